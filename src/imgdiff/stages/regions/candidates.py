"""Candidate boxes of the `semantic` regions method, from several sources, merged before scoring.

Sources (METHOD.md 3.3 and 3.6): `segmenter` (FastSAM proposals of image a AND image b, every box a
candidate at the same coordinates in both), `diff` (the pixel method's changed components) and
`prior` (components of the Prompt-to-Prompt attention of the changed words). A box that overlaps an
earlier candidate above `merge_iou` joins it instead of being scored again; the earlier one keeps
its box, in the order the settings list the sources, and both sources are recorded.

Per-box pixel scores come from summed-area tables, so each box costs four lookups whatever its size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np


@dataclass
class Candidate:
    box: list[float]  # [x1, y1, x2, y2] in pixels of image a
    sources: list[str]  # "segmenter:<model>", "diff", "prior", in the order they found it
    segments: dict[str, int] = field(default_factory=dict)  # image "a"/"b" -> its proposal index


def merge(groups: list[list[Candidate]], merge_iou: float) -> list[Candidate]:
    """One candidate per distinct box: each box in turn joins the first kept candidate it overlaps
    above `merge_iou` (taking its sources and segments along), or is kept."""
    kept: list[Candidate] = []
    boxes = np.zeros((0, 4), np.float64)
    for group in groups:
        for candidate in group:
            overlaps = box_ious(np.asarray(candidate.box, np.float64), boxes)
            best = int(np.argmax(overlaps)) if len(overlaps) else -1
            if best >= 0 and overlaps[best] > merge_iou:
                into = kept[best]
                into.sources += [s for s in candidate.sources if s not in into.sources]
                for image, index in candidate.segments.items():
                    into.segments.setdefault(image, index)
                continue
            kept.append(candidate)
            boxes = np.vstack([boxes, candidate.box])
    return kept


def box_ious(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one box with each row of `boxes` (k, 4)."""
    width = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])
    height = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])
    inter = np.clip(width, 0, None) * np.clip(height, 0, None)
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return np.divide(inter, union - inter, out=np.zeros_like(inter), where=union - inter > 0)


def component_boxes(labels: np.ndarray, shape: tuple[int, int]) -> list[list[float]]:
    """The box of each labelled component (1..max) of a label image, scaled to `shape` (h, w)."""
    count = int(labels.max())
    if count == 0:
        return []
    fy, fx = shape[0] / labels.shape[0], shape[1] / labels.shape[1]
    out = []
    for label in range(1, count + 1):
        x, y, w, h = cv2.boundingRect((labels == label).astype(np.uint8))
        if w and h:
            out.append([x * fx, y * fy, (x + w) * fx, (y + h) * fy])
    return out


def prior_components(prior: np.ndarray, threshold: float) -> np.ndarray:
    """Connected components (int32 labels) of where the changed words' attention, in either prompt
    (the prior's two maps, each scaled to [0, 1]), is above `threshold`."""
    strength = prior.astype(np.float32).max(axis=0)
    _, labels = cv2.connectedComponents((strength > threshold).astype(np.uint8), connectivity=8)
    return labels


def integer_box(box: list[float], height: int, width: int) -> list[int]:
    """The pixels a float box covers, clipped to the image and at least one pixel a side."""
    x1 = min(max(int(np.floor(box[0])), 0), width - 1)
    y1 = min(max(int(np.floor(box[1])), 0), height - 1)
    x2 = max(min(int(np.ceil(box[2])), width), x1 + 1)
    y2 = max(min(int(np.ceil(box[3])), height), y1 + 1)
    return [x1, y1, x2, y2]


class BoxSums:
    """Sums of a map over boxes given in pixels of an image of `shape`, however coarse the map."""

    def __init__(self, values: np.ndarray, shape: tuple[int, int]) -> None:
        self.table = cv2.integral(values.astype(np.float64))  # (h + 1, w + 1)
        self.fy, self.fx = values.shape[0] / shape[0], values.shape[1] / shape[1]
        self.total = float(self.table[-1, -1])

    def over(self, box: list[float]) -> tuple[float, int]:
        """(sum of the map, number of map cells) over the cells the box covers."""
        h, w = self.table.shape[0] - 1, self.table.shape[1] - 1
        x1, x2 = _cells(box[0] * self.fx, box[2] * self.fx, w)
        y1, y2 = _cells(box[1] * self.fy, box[3] * self.fy, h)
        t = self.table
        return float(t[y2, x2] - t[y1, x2] - t[y2, x1] + t[y1, x1]), (x2 - x1) * (y2 - y1)

    def mean(self, box: list[float]) -> float:
        total, cells = self.over(box)
        return total / cells

    def share(self, box: list[float]) -> float:
        """The box's part of the whole map's sum (0 for an empty map)."""
        return self.over(box)[0] / self.total if self.total > 0 else 0.0


def _cells(start: float, stop: float, size: int) -> tuple[int, int]:
    """Map cells [first, last) that a span of map coordinates touches, at least one."""
    first = min(max(int(np.floor(start)), 0), size - 1)
    return first, max(min(int(np.ceil(stop)), size), first + 1)
