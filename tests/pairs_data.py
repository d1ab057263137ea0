"""Small image pairs made in code for tests: one object changed, a global-only change, or none."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def draw_pair(rng: np.random.Generator, size: int, kind: str) -> tuple[Image.Image, Image.Image]:
    base = rng.integers(40, 200, size=3)
    grad = np.linspace(0, 40, size)[None, :, None]
    pixels = np.clip(base[None, None, :] + grad + rng.normal(0, 3, (size, size, 3)), 0, 255)
    a = Image.fromarray(pixels.astype(np.uint8))
    draw = ImageDraw.Draw(a)
    for _ in range(3):
        x, y = rng.integers(0, size * 3 // 4, size=2)
        w = int(rng.integers(size // 8, size // 4))
        draw.rectangle([x, y, x + w, y + w], fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    b = a.copy()
    if kind == "replacement":
        x, y = rng.integers(0, size * 3 // 4, size=2)
        w = int(rng.integers(size // 6, size // 4))
        ImageDraw.Draw(b).ellipse([x, y, x + w, y + w], fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    elif kind == "distractor":
        b = Image.fromarray(np.clip(np.asarray(a, dtype=np.int16) + 60, 0, 255).astype(np.uint8))
    return a, b


def write_pairs(folder: Path, n: int, size: int = 64, seed: int = 0) -> Path:
    """n pairs (mostly replacements, every 5th a distractor, every 7th unchanged) and pairs.jsonl."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        kind = "distractor" if i % 5 == 4 else "unknown" if i % 7 == 6 else "replacement"
        a, b = draw_pair(rng, size, kind)
        a.save(folder / f"{i:04d}_a.png")
        b.save(folder / f"{i:04d}_b.png")
        item = {
            "image_a": f"{i:04d}_a.png",
            "image_b": f"{i:04d}_b.png",
            "caption_a": f"scene {i} with a square",
            "caption_b": f"scene {i} with a circle",
        }
        if kind == "replacement":
            item["edit"] = {"old": "square", "new": "circle"}
            item["kind"] = "replacement"
        lines.append(json.dumps(item))
    path = folder / "pairs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


if __name__ == "__main__":  # regenerates examples/pairs: python tests/pairs_data.py
    write_pairs(Path(__file__).resolve().parents[1] / "examples" / "pairs", 12, size=96, seed=7)
