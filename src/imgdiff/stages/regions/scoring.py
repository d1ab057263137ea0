"""The model calls of the `semantic` regions method: every crop of a batch in as few calls as its
chunk size allows (the reference makes one call per crop and word, with autograd on).

Crops are numpy views of the images (never written anywhere); the backends run in inference mode.
Each crop is resized ONCE, with OpenCV, to the square the model's vision tower takes (when the
backend says which, `image_size`), from the coarsest halving of its image that still holds the
square's side (`Pyramid`): the backend then skips its processor (a batch of its own squares is only
normalised) instead of resizing thousands of odd-sized crops one by one, which cost more than the
tiny models' forward.
The whole box is seen, squeezed to the square, in both crops alike (BLIP's processor squeezes too;
CLIP's would cut an elongated box's ends off).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from imgdiff.models.roles import Embedder, Matcher, cosine_rows


def crop_similarity(embedder: Embedder, crops: list[np.ndarray], per_call: int) -> np.ndarray:
    """CLIP cosine of each box's two crops, float32 (n,), from the n crops of image a followed by
    the n crops of image b: all 2n through `embed_images`, `per_call` crops a call."""
    embeddings = _in_chunks(embedder.embed_images, crops, per_call)
    n = len(crops) // 2
    return cosine_rows(embeddings[:n], embeddings[n:]) if n else np.zeros(0, np.float32)


def match(
    matcher: Matcher, crops: list[np.ndarray], texts: list[str], per_call: int
) -> tuple[np.ndarray, np.ndarray]:
    """(ITM probability, contrastive cosine) of each (crop, text) pair, `per_call` pairs a call."""
    if not crops:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    probabilities, cosines = [], []
    for start in range(0, len(crops), per_call):
        p, c = matcher.match(crops[start : start + per_call], texts[start : start + per_call])
        probabilities.append(p)
        cosines.append(c)
    return np.concatenate(probabilities), np.concatenate(cosines)


class Pyramid:
    """An image and its area-halved copies, made as needed. A box is squeezed to a model's square
    from the coarsest copy that still has twice the square's side across the box: area resizing
    costs in proportion to the pixels it reads, so a 1000 px box squeezed to 32 px from the
    eighth copy costs 64 times less, for nearly the same square (a mean of 2 x 2 means is a
    mean; the box edges move by under half a pixel of that copy: on an SDXL photo, random boxes
    came out 0.3 grey levels apart on average at 32 px, identical at 224 and 384)."""

    def __init__(self, image: np.ndarray) -> None:
        self.levels = [image]

    def crop(self, box: list[int]) -> np.ndarray:
        """The box's pixels (a view), box [x1, y1, x2, y2] in integer pixels of the image."""
        x1, y1, x2, y2 = box
        return self.levels[0][y1:y2, x1:x2]

    def square(self, box: list[int], side: int) -> np.ndarray:
        """The box as a `side` x `side` image: area-averaged down, cubic up."""
        x1, y1, x2, y2 = box
        level = 0
        while min(x2 - x1, y2 - y1) >> (level + 1) >= 2 * side:
            level += 1
        image = self._level(level)
        height, width = image.shape[:2]
        fy, fx = height / self.levels[0].shape[0], width / self.levels[0].shape[1]
        cx1, cy1 = min(round(x1 * fx), width - 1), min(round(y1 * fy), height - 1)
        cx2, cy2 = max(min(round(x2 * fx), width), cx1 + 1), max(min(round(y2 * fy), height), cy1 + 1)
        crop = image[cy1:cy2, cx1:cx2]
        shrink = min(crop.shape[:2]) >= side
        return cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)

    def _level(self, level: int) -> np.ndarray:
        while len(self.levels) <= level:
            last = self.levels[-1]
            half = (max(last.shape[1] // 2, 1), max(last.shape[0] // 2, 1))
            self.levels.append(cv2.resize(last, half, interpolation=cv2.INTER_AREA))
        return self.levels[level]


class Presized:
    """Crops (a box of an image's `Pyramid`) as each model takes them: squeezed once per input
    size to the square the model says it sees (`image_size`; the embedder and matcher may share
    one), or as they are for a backend that does not say."""

    def __init__(self, crops: list[tuple[Pyramid, list[int]]]) -> None:
        self.crops = crops
        self._sized: dict[int, list[np.ndarray]] = {}

    def for_model(self, model: Any) -> list[np.ndarray]:
        side = getattr(model, "image_size", None)
        if side is None:
            return [image.crop(box) for image, box in self.crops]
        if side not in self._sized:
            self._sized[side] = [image.square(box, side) for image, box in self.crops]
        return self._sized[side]


def _in_chunks(call: Any, items: Sequence[Any], per_call: int) -> np.ndarray:
    rows = [call(list(items[start : start + per_call])) for start in range(0, len(items), per_call)]
    return np.concatenate(rows) if rows else np.zeros((0, 0), np.float32)
