"""Boxes read from a model's free-text answer, in pixels of the image they refer to.

Recognised forms, tried in this order (the first form found in an answer decides its scale):

| form | example | coordinates |
|---|---|---|
| Qwen-VL | `<box>(120,40),(560,610)</box>` | 0-1000 of width/height |
| Qwen2-VL | `<|box_start|>(120,40),(560,610)<|box_end|>` | 0-1000 of width/height |
| InternVL | `<ref>cat</ref><box>[[120, 40, 560, 610]]</box>`, or a bare `[[...]]` | 0-1000 |
| plain list | `[0.12, 0.05, 0.56, 0.61]` | normalised when every value is <= 1 |
| plain list | `[64, 20, 287, 312]` | pixels otherwise |

Corners may come in either order (they are sorted), boxes are clipped to the image, and a box with
no area after clipping is dropped. An answer with no box in any form is unparseable.
"""

from __future__ import annotations

import re

_NUMBER = r"-?\d+(?:\.\d+)?"
_QWEN = re.compile(
    rf"(?:<box>|<\|box_start\|>)\s*\(\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\)\s*,?\s*"
    rf"\(\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\)\s*(?:</box>|<\|box_end\|>)"
)
_INTERNVL = re.compile(r"\[\s*(\[[^\[\]]*\](?:\s*,\s*\[[^\[\]]*\])*)\s*\]")
_LIST = re.compile(rf"\[\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\]")
GRID = 1000.0  # Qwen-VL and InternVL give boxes on a 0-1000 grid


def parse_boxes(text: str, width: int, height: int) -> tuple[list[list[float]], str | None]:
    """`(boxes in pixels, the form found)`; `([], None)` when the answer holds no box."""
    qwen = [[float(v) for v in m] for m in _QWEN.findall(text)]
    if qwen:
        return _finish(qwen, width / GRID, height / GRID, width, height), "qwen-vl"
    intern = [box for group in _INTERNVL.findall(text) for box in _lists(group)]
    if intern:
        return _finish(intern, width / GRID, height / GRID, width, height), "internvl"
    plain = [[float(v) for v in m] for m in _LIST.findall(text)]
    if plain:
        if all(0.0 <= v <= 1.0 for box in plain for v in box):
            return _finish(plain, width, height, width, height), "normalised"
        return _finish(plain, 1.0, 1.0, width, height), "pixels"
    return [], None


def _lists(group: str) -> list[list[float]]:
    return [[float(v) for v in m] for m in _LIST.findall(group)]


def _finish(boxes: list[list[float]], sx: float, sy: float, width: int, height: int) -> list[list[float]]:
    out = []
    for x1, y1, x2, y2 in boxes:
        xa, xb = sorted((x1 * sx, x2 * sx))
        ya, yb = sorted((y1 * sy, y2 * sy))
        box = [min(max(xa, 0.0), width), min(max(ya, 0.0), height), min(max(xb, 0.0), width)]
        box.append(min(max(yb, 0.0), height))
        if box[2] > box[0] and box[3] > box[1]:
            out.append(box)
    return out
