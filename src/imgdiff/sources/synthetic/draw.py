"""Rendering: shape outlines, anti-aliased sprites with soft shadows, depth-ordered compositing.

Every shape is a list of polygons inside the unit circle (y points down), each filled (255) or cut
out (0) in order, so a ring or a crescent is a disc with a hole. A sprite rasterises one object once
(cv2.fillPoly with LINE_AA and 4 bits of sub-pixel precision) into a small patch: its coverage
`alpha` in [0, 1], its `mask` (coverage >= 0.5: the object's own pixels) and, on first use, its
`shadow`: the coverage moved by the shadow offset, Gaussian-blurred and scaled by the opacity.
`render` paints the sprites back to front: each shadow darkens what lies below, then the object
covers it. Objects and shadows are painted on their patches only, so a scene costs a few ms.
"""

from __future__ import annotations

from functools import cache, cached_property
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from imgdiff.sources.synthetic.scene import Obj

Polygons = list[tuple[np.ndarray, int]]  # (N x 2 points in the unit circle, 255 fill | 0 cut)


def _arc(radius: float = 1.0, cx: float = 0.0, cy: float = 0.0, n: int = 96, ry: float | None = None):
    t = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + radius * np.cos(t), cy + (ry or radius) * np.sin(t)], 1)


def _regular(k: int, radius: float = 1.0) -> np.ndarray:
    t = -np.pi / 2 + np.arange(k) * 2 * np.pi / k
    return np.stack([radius * np.cos(t), radius * np.sin(t)], 1)


def _star(points: int = 5, inner: float = 0.45) -> np.ndarray:
    t = -np.pi / 2 + np.arange(2 * points) * np.pi / points
    radius = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return np.stack([radius * np.cos(t), radius * np.sin(t)], 1)


def _rounded(w: float, h: float, corner: float) -> np.ndarray:
    out = []
    for sx, sy, start in ((1, 1, 0.0), (-1, 1, 0.5), (-1, -1, 1.0), (1, -1, 1.5)):
        t = np.linspace(start * np.pi, (start + 0.5) * np.pi, 12)
        out.append(
            np.stack([sx * (w - corner) + corner * np.cos(t), sy * (h - corner) + corner * np.sin(t)], 1)
        )
    return np.concatenate(out)


def _heart() -> np.ndarray:
    t = np.linspace(0.0, 2 * np.pi, 120, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    points = np.stack([x, y + 2.5], 1)
    return points / np.linalg.norm(points, axis=1).max()


_CROSS = np.array(
    [(0.32, -0.95), (0.32, -0.32), (0.95, -0.32), (0.95, 0.32), (0.32, 0.32), (0.32, 0.95),
     (-0.32, 0.95), (-0.32, 0.32), (-0.95, 0.32), (-0.95, -0.32), (-0.32, -0.32), (-0.32, -0.95)]
)  # fmt: skip

SHAPES: dict[str, Polygons] = {
    "circle": [(_arc(), 255)],
    "ellipse": [(_arc(1.0, ry=0.6), 255)],
    "square": [(_regular(4, 1.0) @ np.array([[0.7071, -0.7071], [0.7071, 0.7071]]), 255)],
    "rounded rectangle": [(_rounded(0.88, 0.58, 0.28), 255)],
    "triangle": [(_regular(3), 255)],
    "pentagon": [(_regular(5), 255)],
    "hexagon": [(_regular(6), 255)],
    "diamond": [(np.array([[0.0, -1.0], [0.62, 0.0], [0.0, 1.0], [-0.62, 0.0]]), 255)],
    "star": [(_star(), 255)],
    "cross": [(_CROSS, 255)],
    "heart": [(_heart(), 255)],
    "crescent": [(_arc(), 255), (_arc(0.82, 0.42, -0.22), 0)],
    "ring": [(_arc(), 255), (_arc(0.55), 0)],
    "arrow": [
        (np.array([[-1.0, -0.26], [0.15, -0.26], [0.15, -0.68], [1.0, 0.0], [0.15, 0.68], [0.15, 0.26],
                   [-1.0, 0.26]]), 255)
    ],
}  # fmt: skip


@cache
def unit_area(shape: str) -> float:
    """The filled area of a shape of radius 1 (a circle's is pi), measured on a 401 px raster."""
    scale = 200.0
    patch = _raster(SHAPES[shape], scale, 0.0, scale + 0.5, scale + 0.5, (401, 401))
    return float(patch.sum()) / 255.0 / scale**2


def _raster(polys: Polygons, radius: float, angle: float, cx: float, cy: float, shape: tuple[int, int]):
    """uint8 coverage of the polygons scaled by `radius`, turned by `angle`, centred at (cx, cy)."""
    cos, sin = np.cos(angle), np.sin(angle)
    turn = np.array([[cos, sin], [-sin, cos]]) * radius
    patch = np.zeros(shape, np.uint8)
    for points, value in polys:
        fixed = np.round((points @ turn + (cx, cy)) * 16).astype(np.int32)  # 4 bits of sub-pixel
        cv2.fillPoly(patch, [fixed], value, lineType=cv2.LINE_AA, shift=4)
    return patch


class Sprite:
    """One object rasterised once: coverage, own pixels and shadow, each on a patch at (x0, y0)."""

    def __init__(self, obj: Obj) -> None:
        self.obj = obj
        self.x0, self.y0 = int(np.floor(obj.cx - obj.r)) - 2, int(np.floor(obj.cy - obj.r)) - 2
        side = int(np.ceil(2 * obj.r)) + 5
        patch = _raster(SHAPES[obj.shape], obj.r, obj.angle, obj.cx - self.x0, obj.cy - self.y0, (side, side))
        self.alpha = patch.astype(np.float32) / 255.0
        self.mask = patch >= 128
        self.area = int(self.mask.sum())

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.x0, self.y0, self.x0 + self.mask.shape[1], self.y0 + self.mask.shape[0]

    @cached_property
    def shadow(self) -> tuple[np.ndarray, int, int]:
        """(darkening in [0, opacity], x0, y0): the coverage moved by the offset and blurred."""
        dx, dy, sigma, opacity = self.obj.shadow
        pad = shadow_margin(self.obj)
        h, w = self.alpha.shape
        moved = np.zeros((h + 2 * pad, w + 2 * pad), np.float32)
        ox, oy = pad + round(dx), pad + round(dy)
        moved[oy : oy + h, ox : ox + w] = self.alpha
        return cv2.GaussianBlur(moved, (0, 0), sigma) * opacity, self.x0 - pad, self.y0 - pad

    def full_mask(self, size: int) -> np.ndarray:
        """The object's own pixels (coverage >= 0.5) in a size x size image."""
        out = np.zeros((size, size), bool)
        _paste(out, self.mask, self.x0, self.y0, np.logical_or)
        return out


def shadow_margin(obj: Obj) -> int:
    """How far a shadow reaches beyond its object: the offset plus cv2's blur radius (4 sigma)."""
    dx, dy, sigma, _ = obj.shadow
    return int(np.ceil(max(abs(dx), abs(dy)) + 4 * sigma)) + 2


def _window(size: tuple[int, int], patch: np.ndarray, x0: int, y0: int):
    """(image slices, patch slices) where a patch at (x0, y0) overlaps an image of `size`."""
    h, w = patch.shape[:2]
    ys, xs = max(y0, 0), max(x0, 0)
    ye, xe = max(min(y0 + h, size[0]), ys), max(min(x0 + w, size[1]), xs)
    return (slice(ys, ye), slice(xs, xe)), (slice(ys - y0, ye - y0), slice(xs - x0, xe - x0))


def _paste(image: np.ndarray, patch: np.ndarray, x0: int, y0: int, op) -> None:
    where, part = _window(image.shape[:2], patch, x0, y0)
    image[where] = op(image[where], patch[part])


def render(background: np.ndarray, sprites: list[Sprite]) -> np.ndarray:
    """The scene as float32 RGB (0-255): sprites painted back to front over the background."""
    image = background.copy()
    for sprite in sprites:
        shade, sx, sy = sprite.shadow
        where, part = _window(image.shape[:2], shade, sx, sy)
        image[where] *= 1.0 - shade[part][..., None]
        where, part = _window(image.shape[:2], sprite.alpha, sprite.x0, sprite.y0)
        alpha = sprite.alpha[part][..., None]
        image[where] += alpha * (np.asarray(sprite.obj.rgb, np.float32) - image[where])
    return image


def visible(sprites: list[Sprite], index: int, size: int) -> np.ndarray:
    """The pixels of sprite `index` that no sprite in front of it covers (size x size)."""
    own = sprites[index].full_mask(size)
    for front in sprites[index + 1 :]:
        _paste(own, front.mask, front.x0, front.y0, lambda a, b: a & ~b)
    return own


def hidden_share(sprite: Sprite, front: list[Sprite]) -> float:
    """The share of a sprite's pixels that the sprites in `front` cover (on its own patch)."""
    cover = np.zeros_like(sprite.mask)
    for other in front:
        _paste(cover, other.mask, other.x0 - sprite.x0, other.y0 - sprite.y0, np.logical_or)
    return float((cover & sprite.mask).sum()) / max(sprite.area, 1)
