"""Difference areas without weights: where do the two images differ in colour?

`__call__` finds candidate boxes: (1) both images are area-downscaled to a working copy and blurred
against pixel noise; (2) the Lab colour difference (delta-E) marks changed pixels, except those
that only got darker or lighter with the same hue, as under a soft shadow that moved with its
object; (3) an opening removes specks and a closing fills pinholes; (4) changed pixels closer than
`join_size` form one candidate, so the pieces of one edited object stay together; (5) each
candidate is scored and boxed in pixels of image a. Candidates are stored most different first
(by `mean_diff`), at most `max_candidates`.

`decide` drops candidates that fail a `<score>_min/_max` threshold, then runs greedy NMS at
`nms_iou` (most different first, as METHOD.md 3.6 does with the crop cosine), then keeps
`max_regions`. With no survivor, the record is rejected (`no_regions`).

Masks: candidates never overlap, so one uint8 label image at image a's size holds them all: the
`candidates` artifact, `<id>_candidates.npz` with key `labels` (compressed: a 1024 px label image
is a few kB). Candidate i is `labels == i + 1`, and a region points at its candidate with
`scores["candidate"]` (see `region_mask`). Re-deciding from stored
scores never touches the file, so masks stay valid after `imgdiff rethreshold`.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from pydantic import Field

from imgdiff.boxes import iou
from imgdiff.pixels import DELTA_E_MAX, delta_e, to_lab, working_copy
from imgdiff.reason import Reason
from imgdiff.record import Record, Region
from imgdiff.stages.base import Stage, StageSettings


class PixelRegionsSettings(StageSettings):
    DECISIONS = frozenset({"nms_iou", "max_regions"})
    SCORES = {  # per candidate region
        "area": (0.0, 1.0),  # of its box, share of the image
        "mean_diff": (0.0, DELTA_E_MAX),  # delta-E
        "peak_diff": (0.0, DELTA_E_MAX),
        "fill": (0.0, 1.0),  # changed share of the box
    }

    size: int = Field(512, ge=1)  # long side of the working copy (only ever downscaled)
    blur: float = Field(2.0, ge=0)  # Gaussian sigma, working pixels: noise of sigma 6 stays under delta-E 6
    delta_e: float = Field(10.0, ge=0, le=DELTA_E_MAX)  # a pixel changed above this (2.3: just seen)
    # Same-hue darkening down to `shadow_ratio` is shading (1 turns it off); the hue counts as the
    # same within `shadow_angle` degrees between the RGB vectors.
    shadow_ratio: float = Field(0.3, ge=0, le=1)
    shadow_angle: float = Field(5.0, ge=0, le=90)
    open_size: int = Field(5, ge=0)  # opening kernel, working pixels: removes specks; 0 or 1: off
    close_size: int = Field(7, ge=0)  # closing kernel, working pixels: fills pinholes; 0 or 1: off
    join_size: int = Field(31, ge=0)  # changed pixels closer than this are one candidate; 0 or 1: off
    max_candidates: int = Field(32, ge=1, le=255)  # stored per record (the labels are uint8)
    # Per-candidate thresholds on the region scores, checked in this order.
    area_min: float | None = None
    area_max: float | None = None
    mean_diff_min: float | None = None
    peak_diff_min: float | None = None
    fill_min: float | None = None
    nms_iou: float | None = Field(None, ge=0, le=1)  # drop a box overlapping a kept, more different one
    max_regions: int | None = Field(None, ge=1)  # keep at most this many


class PixelRegions(Stage):
    name = "regions"
    method = "pixel"
    version = 1
    Settings = PixelRegionsSettings
    SIDE_TABLE = "candidates"
    # The paper has no pixel detector (METHOD.md 3.6 calls a difference map "an improvement we
    # make"): NMS and the cap are its numbers, the rest are ours, tuned on synthetic scenes.
    PRESETS = {
        "paper": {
            "area_min": 0.002,  # a box under 0.2% of the image (23 px square at 512) is a speck
            "area_max": 0.5,  # a change over half the image is not one object
            "mean_diff_min": 12.0,  # fainter ones sit at the pixel threshold: shading, texture
            "nms_iou": 0.5,  # METHOD.md 3.6
            "max_regions": 10,  # METHOD.md 3.6
        }
    }

    def __call__(self, records: list[Record]) -> list[Record]:
        for record in records:
            a, b = self.images.load(record, "a"), self.images.load(record, "b")
            if a.shape != b.shape:
                record.reject(self.name, f"size_mismatch: {a.shape[:2]} vs {b.shape[:2]}")
                continue
            labels, diff = self.components(a, b)
            record.regions, full = self._candidates(labels, diff, a.shape[:2])
            record.artifacts["candidates"] = {"labels": full}
            record.scores[f"{self.name}.candidates"] = float(labels.max())  # found, before the cap
            record.scores[f"{self.name}.changed_area"] = float((labels > 0).mean())
        return records

    def components(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(int32 candidate labels, delta-E map), both at working size (`semantic` uses them too)."""
        s = self.settings
        # 1. Working copies, blurred: noise averages out, edges stay where they were.
        fa, fb = working_copy(a, s.size, s.blur), working_copy(b, s.size, s.blur)
        # 2. Changed pixels: a clear colour difference that is not just shading.
        diff = delta_e(to_lab(fa), to_lab(fb))
        mask = ((diff > s.delta_e) & ~_shading(fa, fb, s.shadow_ratio, s.shadow_angle)).astype(np.uint8)
        # 3. Morphology: open removes specks, close fills pinholes.
        for op, size in ((cv2.MORPH_OPEN, s.open_size), (cv2.MORPH_CLOSE, s.close_size)):
            if size > 1:
                mask = cv2.morphologyEx(mask, op, _disk(size))
        # 4. Group: components of the mask dilated by join_size, holding only the mask's pixels.
        grouped = cv2.dilate(mask, _disk(s.join_size)) if s.join_size > 1 else mask
        _, labels = cv2.connectedComponents(grouped, connectivity=8, ltype=cv2.CV_32S)
        return labels * mask, diff

    def _candidates(
        self, labels: np.ndarray, diff: np.ndarray, shape: tuple[int, ...]
    ) -> tuple[list[Region], np.ndarray]:
        """Scored regions, most different first, and their uint8 label image at image a's size."""
        height, width = shape
        # 5. Order by mean delta-E, most different first (ties: cv2's raster order); cap.
        pixels = np.bincount(labels.ravel())[1:]
        means = np.bincount(labels.ravel(), weights=diff.ravel())[1:] / pixels
        order = np.argsort(-means, kind="stable")[: self.settings.max_candidates]
        # 6. One label image at image a's size: candidate i is label i + 1.
        relabel = np.zeros(len(pixels) + 1, np.uint8)
        relabel[order + 1] = np.arange(1, len(order) + 1)
        full = cv2.resize(relabel[labels], (width, height), interpolation=cv2.INTER_NEAREST)
        # 7. Boxes and fill from the full-size masks, so that masks and boxes agree exactly.
        regions = []
        for i, component in enumerate(order):
            mask = (full == i + 1).view(np.uint8)
            x, y, w, h = cv2.boundingRect(mask)
            scores = {
                "area": w * h / (width * height),  # of the box, as a share of the image
                "mean_diff": float(means[component]),
                "peak_diff": float(diff[labels == component + 1].max()),
                "fill": cv2.countNonZero(mask) / (w * h),  # changed share of the box
                "candidate": float(i),
            }
            box = [float(x), float(y), float(x + w), float(y + h)]
            regions.append(Region(box=box, source="diff", scores=scores))
        return regions, full

    def decide(self, record: Record) -> None:
        """Keep the candidates that pass thresholds, NMS and the cap; no survivor rejects."""
        verdicts = self.verdicts(record.regions)
        record.regions = [r for r, v in zip(record.regions, verdicts, strict=True) if v is None]
        if not verdicts:
            record.reject(self.name, "no_regions: no changed area found")
        elif not record.regions:
            codes = [v.code for v in verdicts if v is not None]
            why = ", ".join(f"{code} {codes.count(code)}" for code in dict.fromkeys(codes))
            record.reject(self.name, f"no_regions: all {len(codes)} candidates dropped ({why})")

    def verdicts(self, regions: list[Region]) -> list[Reason | None]:
        """For each candidate in order: None if kept, else why not (a threshold, `nms` or `cap`)."""
        s = self.settings
        kept: list[Region] = []
        out: list[Reason | None] = []
        for region in regions:
            reason = self.failed_threshold(region.scores)
            overlap = max((iou(region.box, k.box) for k in kept), default=0.0)
            if reason is None and s.nms_iou is not None and overlap > s.nms_iou:
                reason = Reason("nms", f"IoU {overlap:.2f} > {s.nms_iou:g}")
            if reason is None and s.max_regions is not None and len(kept) >= s.max_regions:
                reason = Reason("cap", f"{s.max_regions} regions kept already")
            if reason is None:
                kept.append(region)
            out.append(reason)
        return out

    def side_rows(self, scored: Record, decided: Record) -> list[dict[str, Any]]:
        """One row per candidate: box, scores, and whether (or why not) the decision kept it."""
        rows = []
        for i, (region, reason) in enumerate(zip(scored.regions, self.verdicts(scored.regions), strict=True)):
            x1, y1, x2, y2 = region.box
            scores = {k: v for k, v in region.scores.items() if k != "candidate"}
            rows.append(
                {"id": scored.id, "candidate": i, "x1": x1, "y1": y1, "x2": x2, "y2": y2}
                | scores
                | {"kept": reason is None, "reason": None if reason is None else str(reason)}
            )
        return rows


def region_mask(labels: np.ndarray, region: Region) -> np.ndarray:
    """The boolean mask (image a's size) of a region this stage found, from its `candidates` labels."""
    return labels == int(region.scores["candidate"]) + 1


def _shading(a: np.ndarray, b: np.ndarray, ratio: float, angle: float) -> np.ndarray:
    """Pixels where one image is a darker copy of the other (down to `ratio`, hue within `angle`
    degrees): a soft shadow cast or lifted. Like the shadow test of background subtraction
    (Horprasert et al. 1999), brightness may change but chromaticity may not."""
    # channel by channel: numpy's norm and einsum over a 3-long last axis are 2x slower (same sums)
    (a0, a1, a2), (b0, b1, b2) = cv2.split(a), cv2.split(b)
    norm_a, norm_b = np.sqrt(a0 * a0 + a1 * a1 + a2 * a2), np.sqrt(b0 * b0 + b1 * b1 + b2 * b2)
    cosine = (a0 * b0 + a1 * b1 + a2 * b2) / (norm_a * norm_b + 1e-6)
    darker = np.minimum(norm_a, norm_b) / (np.maximum(norm_a, norm_b) + 1e-6)
    return (cosine >= np.cos(np.radians(angle))) & (darker >= ratio)


def _disk(size: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
