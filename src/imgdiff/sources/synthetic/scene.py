"""The scene graph: objects (class, colour, size, place, shadow), how they are placed, and captions.

An object's size class fixes its filled area (small 1.2-2%, medium 2.5-4%, large 5-8% of the
image), whatever its class: a star or a ring is drawn wider than a disc of the same area. All
shadows of a scene fall the same way (one light); each is offset by 3-6% of its object's extent
(the diameter of the circle holding the shape), blurred by 2-4% of it, with opacity 0.3-0.5.
Objects are placed one at a time, back to front; a placement that would leave an object behind it
less than `MIN_SHOWN` visible is tried again, so every object named in a caption can be seen.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from imgdiff.language.articles import with_article
from imgdiff.language.grammar import listed
from imgdiff.sources.synthetic.draw import SHAPES, Sprite, hidden_share, unit_area

Rng = np.random.Generator

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (40, 165, 60),
    "blue": (35, 75, 215),
    "yellow": (240, 210, 40),
    "purple": (135, 55, 175),
    "orange": (245, 135, 25),
    "white": (242, 242, 242),
    "black": (22, 22, 22),
}
SIZES: dict[str, tuple[float, float]] = {
    "small": (0.012, 0.02),
    "medium": (0.025, 0.04),
    "large": (0.05, 0.08),
}
CLASSES = tuple(SHAPES)
MIN_SHOWN = 0.4  # every object keeps at least this share of its pixels visible
PLACE_TRIES = 30


@dataclass(frozen=True)
class Obj:
    shape: str
    colour: str
    size: str
    cx: float
    cy: float
    r: float  # radius of the circle holding the shape, pixels
    angle: float  # radians
    rgb: tuple[float, float, float]
    shadow: tuple[float, float, float, float]  # dx, dy, blur sigma (pixels), opacity

    @property
    def name(self) -> str:
        """What an edit calls it: 'red star'."""
        return f"{self.colour} {self.shape}"

    @property
    def phrase(self) -> str:
        """What a caption calls it: 'a large red star', 'an orange ring' (medium goes unsaid)."""
        words = f"{self.size} {self.name}" if self.size != "medium" else self.name
        return with_article(words)


def new_object(
    rng: Rng,
    size: int,
    light: float,
    shape: str | None = None,
    colour: str | None = None,
    like: Obj | None = None,
) -> Obj:
    """A random object; `like`: same place, size class and shadow as that one (a replacement)."""
    shape = shape or CLASSES[int(rng.integers(len(CLASSES)))]
    colour = colour or tuple(COLOURS)[int(rng.integers(len(COLOURS)))]
    size_class = like.size if like else tuple(SIZES)[int(rng.integers(len(SIZES)))]
    low, high = SIZES[size_class]
    area = rng.uniform(low, high) * size * size
    if like:  # about the same area as the object it replaces
        area = unit_area(like.shape) * like.r**2 * rng.uniform(0.9, 1.1)
    r = min(float(np.sqrt(area / unit_area(shape))), 0.3 * size)
    angle = np.radians(rng.uniform(-20, 20))
    if shape == "arrow":  # arrows point any of four ways
        angle += int(rng.integers(4)) * np.pi / 2
    if like:
        cx, cy = like.cx, like.cy
        rgb = like.rgb if colour == like.colour else _jitter(rng, colour)
        offset, sigma, opacity = _shadow_shares(like)
    else:
        cx, cy = rng.uniform(r + 2, size - r - 2, 2)
        rgb = _jitter(rng, colour)
        offset, sigma, opacity = rng.uniform(0.03, 0.06), rng.uniform(0.02, 0.04), rng.uniform(0.3, 0.5)
    shadow = (offset * 2 * r * np.cos(light), offset * 2 * r * np.sin(light), sigma * 2 * r + 1.0, opacity)
    return Obj(shape, colour, size_class, float(cx), float(cy), r, float(angle), rgb, shadow)


def _shadow_shares(obj: Obj) -> tuple[float, float, float]:
    """(offset, blur) as shares of the extent, and opacity, of an object's shadow."""
    dx, dy, sigma, opacity = obj.shadow
    return float(np.hypot(dx, dy)) / (2 * obj.r), (sigma - 1.0) / (2 * obj.r), opacity


def _jitter(rng: Rng, colour: str) -> tuple[float, float, float]:
    rgb = np.clip(np.array(COLOURS[colour], np.float32) + rng.uniform(-8, 8, 3), 0, 255)
    return tuple(float(v) for v in rgb)  # type: ignore[return-value]


def place(rng: Rng, size: int, n: int, light: float, occluded: tuple[int, int] | None) -> list[Sprite] | None:
    """n sprites placed back to front, each leaving those behind it at least MIN_SHOWN visible.

    `occluded` = (t, o): object o is put over object t so that it hides 15-60% of it. None when a
    placement keeps failing (the caller draws again)."""
    sprites: list[Sprite] = []
    names: set[str] = set()
    for k in range(n):
        for _ in range(PLACE_TRIES):
            obj = new_object(rng, size, light)
            if obj.name in names:
                continue
            if occluded and k == occluded[1]:
                obj = _over(rng, obj, sprites[occluded[0]].obj, size)
            sprite = Sprite(obj)
            if _fits(sprites, sprite, occluded):
                sprites.append(sprite)
                names.add(obj.name)
                break
        else:
            return None
    return sprites


def _over(rng: Rng, obj: Obj, below: Obj, size: int) -> Obj:
    """`obj` moved to overlap `below` from a random side."""
    reach = np.sqrt(unit_area(obj.shape) / np.pi) * obj.r + np.sqrt(unit_area(below.shape) / np.pi) * below.r
    turn = rng.uniform(0, 2 * np.pi)
    distance = reach * rng.uniform(0.45, 0.85)
    cx = np.clip(below.cx + distance * np.cos(turn), obj.r + 2, size - obj.r - 2)
    cy = np.clip(below.cy + distance * np.sin(turn), obj.r + 2, size - obj.r - 2)
    return replace(obj, cx=float(cx), cy=float(cy))


def _fits(sprites: list[Sprite], new: Sprite, occluded: tuple[int, int] | None) -> bool:
    for i, sprite in enumerate(sprites):
        front = [*sprites[i + 1 :], new]
        hidden = hidden_share(sprite, front)
        if occluded and i == occluded[0]:
            low = 0.15 if len(sprites) >= occluded[1] else 0.0
            if not low <= hidden <= 0.6:
                return False
        elif hidden > 1.0 - MIN_SHOWN:
            return False
    return True


def all_shown(sprites: list[Sprite]) -> bool:
    """Whether every sprite shows at least MIN_SHOWN of itself."""
    return all(hidden_share(s, sprites[i + 1 :]) <= 1.0 - MIN_SHOWN for i, s in enumerate(sprites))


def caption(objects: list[Obj], setting: str) -> str:
    """'a large red star, a small blue ring and a green hexagon on a tiled floor' (left to right)."""
    phrases = [o.phrase for o in sorted(objects, key=lambda o: (o.cx, o.cy))]
    return f"{listed(phrases)} {setting}"
