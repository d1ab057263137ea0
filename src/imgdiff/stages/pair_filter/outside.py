"""`outside_change`: how much an editor changed the photo outside the edited region.

Instruction editors regenerate the whole image; a good one leaves everything but the edited object
as it was, a poor one repaints the photo (colours drift, textures are redrawn, the view shifts).
The score is the mean delta-E (CIE Lab, on the pair filter's small blurred copies) over the pixels
outside the edited region: under about 1 for a clean edit (resampling and noise only), several
units for a repaint. Where the edited region comes from:
- `truth` boxes of the record when it has them (synthetic and copy-paste sources);
- else the difference map itself: pixels over the pair filter's `delta_e`, opened against noise,
  whose connected components are taken largest first while the box around them covers at most
  `region_limit` of the image. A whole-image repaint thus never passes as "one big edit": its
  change is left outside the capped region and counts.
The region's box grows by `margin` pixels of the small copy (edges blur into their neighbours).
"""

from __future__ import annotations

import cv2
import numpy as np

from imgdiff.record import Record


def outside_change(
    diff: np.ndarray,
    record: Record,
    image_size: tuple[int, int],
    delta_e: float,
    margin: int,
    region_limit: float,
) -> float:
    """Mean of `diff` (h, w delta-E at the small copy's size) outside the edited region of `record`,
    whose image a is `image_size` (height, width); 0 when the region covers everything."""
    inside = _truth_region(record, diff.shape, image_size)
    if inside is None:
        inside = _difference_region(diff, delta_e, region_limit)
    if margin and inside.any():
        inside = cv2.dilate(inside.view(np.uint8), np.ones((2 * margin + 1,) * 2, np.uint8)).astype(bool)
    outside = ~inside
    return float(diff[outside].mean()) if outside.any() else 0.0


def _truth_region(record: Record, shape: tuple[int, ...], image_size: tuple[int, int]) -> np.ndarray | None:
    """The record's truth boxes drawn at the small copy's size, or None without truth."""
    if not record.truth:
        return None
    h, w = shape[:2]
    sy, sx = h / image_size[0], w / image_size[1]
    region = np.zeros((h, w), bool)
    for truth in record.truth:
        x1, y1, x2, y2 = truth.box
        region[
            int(np.floor(y1 * sy)) : int(np.ceil(y2 * sy)), int(np.floor(x1 * sx)) : int(np.ceil(x2 * sx))
        ] = True
    return region


def _difference_region(diff: np.ndarray, delta_e: float, region_limit: float) -> np.ndarray:
    """Boxes of the changed components, largest first, while their joint box stays within
    `region_limit` of the image."""
    changed = cv2.morphologyEx((diff > delta_e).view(np.uint8), cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(changed, connectivity=8)
    region = np.zeros(diff.shape, bool)
    box: list[int] | None = None
    limit = region_limit * diff.size
    for label in sorted(range(1, count), key=lambda i: (-stats[i, cv2.CC_STAT_AREA], i)):
        x, y, bw, bh = (int(v) for v in stats[label, :4])
        joint = [x, y, x + bw, y + bh] if box is None else [
            min(box[0], x), min(box[1], y), max(box[2], x + bw), max(box[3], y + bh)
        ]  # fmt: skip
        if (joint[2] - joint[0]) * (joint[3] - joint[1]) > limit:
            continue
        box = joint
        region[y : y + bh, x : x + bw] = True
    return region
