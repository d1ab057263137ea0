"""Stand-in photos for the tiny `photo-edit` recipe: a few small scenes drawn in code (a lit floor and
wall, a couple of objects with shadows) with COCO-style captions, so that `make-tiny` needs no data.
Tiny editors make noise of any image: the photos only have to be real files of the right kind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

# (caption, objects as (x, y, width, height, RGB)) on a 96 x 64 px photo
PHOTOS = (
    ("a cat sitting on a wooden bench", [(20, 28, 30, 18, (140, 90, 50)), (30, 14, 12, 14, (70, 70, 70))]),
    ("a red car parked next to a tree", [(10, 34, 36, 16, (200, 30, 30)), (62, 8, 14, 44, (40, 120, 40))]),
    ("a man standing in front of a bus", [(8, 18, 70, 30, (230, 190, 40)), (40, 22, 10, 34, (60, 60, 160))]),
    ("an apple on a white plate", [(30, 34, 36, 10, (240, 240, 240)), (42, 24, 12, 12, (190, 20, 20))]),
)
SIZE = (64, 96)  # height, width


def write_photos(out: Path) -> tuple[Path, Path]:
    """Write the photos and `captions.json` (COCO captions format) under `out`; return (images
    folder, captions file)."""
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    listed, annotations = [], []
    for i, (caption, objects) in enumerate(PHOTOS, start=1):
        name = f"{i:012d}.png"
        Image.fromarray(_draw(objects)).save(images / name)
        listed.append({"id": i, "file_name": name, "height": SIZE[0], "width": SIZE[1]})
        annotations.append({"id": i, "image_id": i, "caption": caption})
    captions = out / "captions.json"
    captions.write_text(json.dumps({"images": listed, "annotations": annotations}, indent=1) + "\n")
    return images, captions


def _draw(objects: list[tuple[int, int, int, int, tuple[int, int, int]]]) -> np.ndarray:
    h, w = SIZE
    rows = np.linspace(0.0, 1.0, h)[:, None, None]
    wall, floor = np.array([200.0, 205.0, 215.0]), np.array([150.0, 120.0, 90.0])
    image = np.where(rows < 0.6, wall * (0.8 + 0.2 * rows), floor * (1.1 - 0.3 * rows)) * np.ones((1, w, 1))
    for x, y, bw, bh, colour in objects:
        image[y + bh : y + bh + 3, x + 2 : x + bw + 2] *= 0.7  # a soft shadow under it
        image[y : y + bh, x : x + bw] = colour
    return np.clip(image, 0, 255).astype(np.uint8)
