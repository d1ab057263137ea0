"""`imgdiff demo`: a small set of pairs drawn on the fly, through the whole weight-free pipeline.

The scenes are simple on purpose (a gradient, a few flat shapes, light noise): one object is
replaced or removed, and a few pairs are distractors with a global colour change only. Drawing is
deterministic from the seed, so the same command resumes the same run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("square", "circle", "triangle")
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 210, 40),
    "purple": (140, 60, 170),
    "orange": (240, 140, 30),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}


@dataclass(frozen=True)
class Shape:
    kind: str
    colour: str
    box: tuple[int, int, int, int]

    @property
    def name(self) -> str:
        return f"{self.colour} {self.kind}"


def draw_pairs(folder: Path, n: int, seed: int = 0, size: int = 256) -> Path:
    """Write n pairs and their pairs.jsonl into `folder`; return the JSONL path."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        background = rng.integers(60, 200, size=3)
        shapes = _place(rng, size, int(rng.integers(3, 6)))
        roll = rng.random()
        kind = "distractor" if roll < 0.15 else "removal" if roll < 0.4 else "replacement"
        target = int(rng.integers(len(shapes)))
        edited = list(shapes)
        edit = None
        if kind == "replacement":
            new = _other(rng, shapes[target])
            edited[target] = new
            edit = {"old": shapes[target].name, "new": new.name}
        elif kind == "removal":
            del edited[target]
            edit = {"old": shapes[target].name, "new": ""}
        a = _render(background, shapes, size, rng)
        b = _render(background, edited, size, rng)
        if kind == "distractor":
            gain, shift = rng.uniform(0.8, 1.2), rng.uniform(-30, 30, size=3)
            b = np.clip(b.astype(np.float32) * gain + shift, 0, 255).astype(np.uint8)
        for name, pixels in (("a", a), ("b", b)):
            Image.fromarray(pixels).save(folder / f"{i:05d}_{name}.png", compress_level=1)
        item = {
            "image_a": f"{i:05d}_a.png",
            "image_b": f"{i:05d}_b.png",
            "caption_a": _caption(shapes),
            "caption_b": _caption(edited),
            "kind": kind,
        }
        if edit:
            item["edit"] = edit
        lines.append(json.dumps(item))
    path = folder / "pairs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def _place(rng: np.random.Generator, size: int, count: int) -> list[Shape]:
    """Shapes that do not overlap (a few tries each), 12-28% of the image side."""
    shapes: list[Shape] = []
    for _ in range(count * 20):
        if len(shapes) == count:
            break
        side = int(rng.integers(size * 12 // 100, size * 28 // 100))
        x, y = (int(v) for v in rng.integers(4, size - side - 4, size=2))
        box = (x, y, x + side, y + side)
        if all(_apart(box, s.box) for s in shapes):
            shapes.append(Shape(str(rng.choice(SHAPES)), str(rng.choice(list(COLOURS))), box))
    return shapes


def _apart(a: tuple[int, ...], b: tuple[int, ...], gap: int = 6) -> bool:
    return a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1]


def _other(rng: np.random.Generator, shape: Shape) -> Shape:
    """Another shape or colour (or both) at the same place."""
    while True:
        new = replace(shape, kind=str(rng.choice(SHAPES)), colour=str(rng.choice(list(COLOURS))))
        if new.name != shape.name:
            return new


def _render(background: np.ndarray, shapes: list[Shape], size: int, rng: np.random.Generator) -> np.ndarray:
    ramp = np.linspace(-25, 25, size, dtype=np.float32)[:, None, None]
    pixels = np.clip(background[None, None, :] + ramp, 0, 255).repeat(size, axis=1).astype(np.uint8)
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    for s in shapes:
        x1, y1, x2, y2 = s.box
        fill = COLOURS[s.colour]
        if s.kind == "square":
            draw.rectangle([x1, y1, x2 - 1, y2 - 1], fill=fill)
        elif s.kind == "circle":
            draw.ellipse([x1, y1, x2 - 1, y2 - 1], fill=fill)
        else:
            draw.polygon([((x1 + x2) // 2, y1), (x2 - 1, y2 - 1), (x1, y2 - 1)], fill=fill)
    noise = rng.normal(0, 2.0, (size, size, 3))
    return np.clip(np.asarray(image, dtype=np.float32) + noise, 0, 255).astype(np.uint8)


def _caption(shapes: list[Shape]) -> str:
    names = [f"a {s.name}" for s in shapes]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"{listed} on a plain background"
