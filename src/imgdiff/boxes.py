"""Boxes are [x1, y1, x2, y2] in pixels (x2, y2 exclusive); what every part computes about them."""

from __future__ import annotations

from collections.abc import Sequence


def iou(p: Sequence[float], q: Sequence[float]) -> float:
    """Intersection over union of two boxes; 0 when either is empty."""
    width = min(p[2], q[2]) - max(p[0], q[0])
    height = min(p[3], q[3]) - max(p[1], q[1])
    inter = max(width, 0.0) * max(height, 0.0)
    union = (p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - inter
    return inter / union if union > 0 else 0.0
