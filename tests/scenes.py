"""Realistic synthetic scenes for the pixel stages' tests: texture, soft shadows, noise, one edit."""

from __future__ import annotations

import cv2
import numpy as np


def draw_pair(
    seed: int, size: int = 512, edit: str = "replace", noise: float = 4.0
) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """A textured scene with 3-8 objects casting soft shadows, and a copy whose top object is
    replaced (same place, other shape and colour), removed, or left alone (`edit="none"`); both
    get Gaussian noise. Returns (a, b, union box of the old and new object)."""
    rng = np.random.default_rng(seed)
    background = rng.uniform(40, 210, 3).astype(np.float32) + sum(
        cv2.resize(rng.normal(0, rng.uniform(4, 12), (size // s, size // s, 3)), (size, size))
        for s in (4, 16, 64)
    ).astype(np.float32)
    objects = [_shape(rng, size) for _ in range(rng.integers(3, 9))]
    old = objects[-1]
    new = _shape(rng, size, at=old) if edit == "replace" else None
    edited = objects if edit == "none" else [*objects[:-1], *([new] if new else [])]
    a, b = _render(background, objects), _render(background, edited)
    a, b = (np.clip(x + rng.normal(0, noise, x.shape), 0, 255).astype(np.uint8) for x in (a, b))
    masks = [old["mask"], *([new["mask"]] if new else [])]
    x, y, w, h = cv2.boundingRect(np.logical_or.reduce(masks).astype(np.uint8))
    return a, b, [x, y, x + w, y + h]


def _shape(rng: np.random.Generator, size: int, at: dict | None = None) -> dict:
    """An ellipse, rectangle or triangle of 1.5-5% of the image; `at`: replace it in place."""
    kinds = [k for k in ("ellipse", "rect", "triangle") if at is None or k != at["kind"]]
    kind = kinds[rng.integers(len(kinds))]
    r = at["r"] if at else np.sqrt(rng.uniform(0.015, 0.05) / np.pi) * size
    cx, cy = (at["cx"], at["cy"]) if at else rng.uniform(r * 1.3, size - r * 1.3, 2)
    mask = np.zeros((size, size), np.uint8)
    if kind == "ellipse":
        axes = (int(r * rng.uniform(0.9, 1.2)), int(r * rng.uniform(0.9, 1.2)))
        cv2.ellipse(mask, (int(cx), int(cy)), axes, rng.uniform(0, 180), 0, 360, 1, -1)
    elif kind == "rect":
        cv2.rectangle(mask, (int(cx - r), int(cy - r * 0.9)), (int(cx + r), int(cy + r * 0.9)), 1, -1)
    else:
        angles = rng.uniform(0, 2 * np.pi) + np.arange(3) * 2 * np.pi / 3
        points = np.stack([cx + 1.3 * r * np.cos(angles), cy + 1.3 * r * np.sin(angles)], 1)
        cv2.fillPoly(mask, [points.astype(np.int32)], 1)
    shadow = (rng.integers(4, 12), rng.integers(4, 12), rng.uniform(3, 7), rng.uniform(0.25, 0.5))
    colour = rng.uniform(0, 255, 3)
    return {"kind": kind, "r": r, "cx": cx, "cy": cy, "mask": mask > 0, "colour": colour, "shadow": shadow}


def _render(background: np.ndarray, objects: list[dict]) -> np.ndarray:
    image = background.copy()
    size = image.shape[0]
    for o in objects:
        dx, dy, blur, strength = o["shadow"]
        moved = cv2.warpAffine(
            o["mask"].astype(np.float32), np.float32([[1, 0, dx], [0, 1, dy]]), (size, size)
        )
        image *= 1 - strength * cv2.GaussianBlur(moved, (0, 0), blur)[..., None]
        image[o["mask"]] = o["colour"]
    return image
