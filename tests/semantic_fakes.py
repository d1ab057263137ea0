"""Deterministic test-only models for the `semantic` regions method, whose scores follow the ground
truth of a drawn pair: colours are the objects. A red square in image a becomes a blue disc in b.

- `ColourEmbedder`: an image's embedding is its share of red, green, blue and other pixels, so two
  crops of the changed box differ and two crops of an unchanged object are the same.
- `ColourMatcher`: a (crop, text) pair scores the share of the crop in the colour the text names:
  a's crop matches "red square", b's crop matches "blue disc", and b's crop against a's object
  ("red square", the reference's bug) scores 0.
- `BoxSegmenter`: fixed proposals on every image, masks filled inside the box.
Each counts its calls and the items per call.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from imgdiff.record import Edit, Record

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220)}
CHANGED = [40, 40, 100, 100]  # the changed object's box in both images
STILL = [140, 30, 190, 80]  # a green square, the same in both images


def colour_shares(image: np.ndarray) -> np.ndarray:
    """(red, green, blue, other) shares of the pixels within 60 of each named colour."""
    pixels = image.reshape(-1, 3).astype(np.int32)
    near = [np.abs(pixels - np.array(rgb)).max(axis=1) < 60 for rgb in COLOURS.values()]
    shares = [float(n.mean()) for n in near]
    return np.array([*shares, 1.0 - sum(shares)], np.float32)


class ColourEmbedder:
    max_text_tokens = 75

    def __init__(self) -> None:
        self.calls: list[int] = []

    def embed_images(self, images: list[np.ndarray]) -> np.ndarray:
        self.calls.append(len(images))
        rows = np.array([colour_shares(image) for image in images], np.float32).reshape(-1, 4)
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return rows / np.maximum(norms, 1e-9)


class ColourMatcher:
    def __init__(self) -> None:
        self.calls: list[int] = []
        self.pairs: list[tuple[np.ndarray, str]] = []

    def match(self, images: list[np.ndarray], texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        self.calls.append(len(images))
        self.pairs += list(zip(images, texts, strict=True))
        scores = []
        for image, text in zip(images, texts, strict=True):
            named = [i for i, name in enumerate(COLOURS) if name in text.split()]
            scores.append(colour_shares(image)[named[0]] if named else 0.0)
        probability = np.array(scores, np.float32)
        return probability, probability * 0.8  # the cosine: another scale, the same order


class BoxProposals:
    def __init__(self, boxes: list[list[float]]) -> None:
        self.boxes = np.array(boxes, np.float32).reshape(-1, 4)
        self.scores = np.ones(len(boxes), np.float32)

    def masks(self, indices: list[int], boxes: list[list[int]]) -> list[np.ndarray]:
        return [np.ones((y2 - y1, x2 - x1), bool) for x1, y1, x2, y2 in boxes]


class BoxSegmenter:
    def __init__(self, boxes: list[list[float]]) -> None:
        self.boxes = boxes
        self.calls: list[int] = []

    def propose(self, images: list[np.ndarray]) -> list[BoxProposals]:
        self.calls.append(len(images))
        return [BoxProposals(self.boxes) for _ in images]


class FakePool:
    """What a stage's `setup` asks of the ModelPool: `get(name)`."""

    def __init__(self, **models: Any) -> None:
        self.models = models

    def get(self, name: str) -> Any:
        return self.models[name]


def drawn_pair(seed: int, size: int = 224) -> tuple[np.ndarray, np.ndarray]:
    """A noisy grey scene with a green square (unchanged) and a red square in a that is a blue
    disc in b, at CHANGED."""
    rng = np.random.default_rng(seed)
    a = np.clip(rng.normal(128, 4, (size, size, 3)), 0, 255).astype(np.uint8)
    cv2.rectangle(a, STILL[:2], (STILL[2] - 1, STILL[3] - 1), COLOURS["green"], -1)
    b = a.copy()
    cv2.rectangle(a, CHANGED[:2], (CHANGED[2] - 1, CHANGED[3] - 1), COLOURS["red"], -1)
    centre, radius = (70, 70), 29
    cv2.circle(b, centre, radius, COLOURS["blue"], -1)
    cv2.rectangle(b, (40, 40), (99, 99), COLOURS["blue"], 2)  # the disc's frame: the same box
    return a, b


def drawn_record(seed: int, edit: bool = True) -> Record:
    a, b = drawn_pair(seed)
    return Record(
        id=f"pair{seed:02d}",
        source_index=seed,
        seed=seed,
        caption_a="a red square and a green square",
        caption_b="a blue disc and a green square",
        edit=Edit(old="red square", new="blue disc") if edit else None,
        artifacts={"a": a, "b": b},
    )
