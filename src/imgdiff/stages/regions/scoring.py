"""The model calls of the `semantic` regions method: every crop of a batch in as few calls as its
chunk size allows (the reference makes one call per crop and word, with autograd on).

Crops are numpy views of the images (never written anywhere); the backends run in inference mode.
Each crop is resized ONCE, with OpenCV, to the square the model's vision tower takes (when the
backend says which, `image_size`): the processor then gets one batch of one shape instead of
resizing thousands of odd-sized crops one by one, which cost more than the tiny models' forward.
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


class Presized:
    """The crops of a batch as each model takes them, resized once per input size (the embedder
    and matcher may share one)."""

    def __init__(self, crops: list[np.ndarray]) -> None:
        self.crops = crops
        self._sized: dict[int, list[np.ndarray]] = {}

    def for_model(self, model: Any) -> list[np.ndarray]:
        side = getattr(model, "image_size", None)  # a backend that does not say gets them as they are
        if side is None:
            return self.crops
        if side not in self._sized:
            self._sized[side] = presized(self.crops, side)
        return self._sized[side]


def presized(crops: list[np.ndarray], side: int) -> list[np.ndarray]:
    """Each crop as a `side` x `side` image: area-averaged down, cubic up."""
    return [
        cv2.resize(
            crop,
            (side, side),
            interpolation=cv2.INTER_AREA if min(crop.shape[:2]) >= side else cv2.INTER_CUBIC,
        )
        for crop in crops
    ]


def _in_chunks(call: Any, items: Sequence[Any], per_call: int) -> np.ndarray:
    rows = [call(list(items[start : start + per_call])) for start in range(0, len(items), per_call)]
    return np.concatenate(rows) if rows else np.zeros((0, 0), np.float32)
