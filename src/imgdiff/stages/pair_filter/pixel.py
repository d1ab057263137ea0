"""Whole-pair filter without weights: is this one local edit of one scene?

Both images are area-downscaled (long side `size`), lightly blurred against pixel noise and
compared in CIE Lab (delta-E, see `imgdiff.pixels`). Four scores, each catching one way a pair
fails:
- `similarity` = 1 - mean delta-E / 100: low when the scene was replaced or broken;
- `structure` = mean SSIM of the L channel: low when the layout changed, whatever the colours;
- `changed_area` = share of pixels whose delta-E exceeds `delta_e` once the one affine colour map
  that best turns a into b is taken out: about 0 for a failed edit (identical, noise only) and for
  a global change (brightness, contrast, colour cast: that map explains it), the object's share
  for a local edit, large for an edit too big to be one object;
- `median_diff` = the median delta-E: a local edit leaves most pixels alone, so it stays at the
  noise floor; a global change moves every pixel, so an edit on top of one is caught too.
With `outside: true`, a fifth score, `outside_change` = the mean delta-E outside the edited region
(`outside.py`: truth boxes, else the difference map's own), catches editors that repainted the
whole photo. It is off by default: then no record gains the score and the fingerprint is as before,
so runs made without it resume as they were.
Scores are computed per record, so they do not depend on how records are batched.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from pydantic import Field

from imgdiff.pixels import DELTA_E_MAX, delta_e, to_lab, working_copy
from imgdiff.record import Record
from imgdiff.stages.base import Stage, StageSettings
from imgdiff.stages.pair_filter.outside import outside_change

# SSIM constants (Wang et al. 2004) for L in [0, 100]: (0.01 L_max)^2 and (0.03 L_max)^2.
_C1, _C2 = 1.0**2, 3.0**2
_PULL = 1e-5  # ridge weight per fitted pixel towards the identity colour map


class PixelPairFilterSettings(StageSettings):
    SCORES = {
        "similarity": (1.0 - DELTA_E_MAX / 100.0, 1.0),  # 1 - mean delta-E / 100
        "structure": (-1.0, 1.0),  # SSIM
        "changed_area": (0.0, 1.0),  # share of the pixels
        "median_diff": (0.0, DELTA_E_MAX),  # delta-E
        "outside_change": (0.0, DELTA_E_MAX),  # mean delta-E outside the edited region
    }

    size: int = Field(64, ge=1)  # long side of the compared copies: global statistics need no detail
    blur: float = Field(1.0, ge=0)  # Gaussian sigma (pixels of the small copy) against noise
    delta_e: float = Field(10.0, ge=0, le=DELTA_E_MAX)  # a pixel counts as changed above this
    outside: bool = False  # score outside_change (for pairs from instruction editors)
    outside_margin: int = Field(2, ge=0)  # px of the small copy the edited region grows by
    outside_region_limit: float = Field(0.5, gt=0, le=1)  # the largest region the difference map may give
    # Thresholds are checked in this order; the first one that fails names the reason.
    similarity_min: float | None = None
    similarity_max: float | None = None
    structure_min: float | None = None
    changed_area_min: float | None = None
    changed_area_max: float | None = None
    median_diff_max: float | None = None
    outside_change_max: float | None = None

    def score_defining(self) -> dict[str, Any]:
        # Off, the outside settings define nothing: leaving them out keeps the fingerprint of runs
        # made before they existed, so those resume without scoring again.
        settings = super().score_defining()
        if not self.outside:
            for key in ("outside", "outside_margin", "outside_region_limit"):
                settings.pop(key, None)
        return settings


class PixelPairFilter(Stage):
    name = "pair_filter"
    method = "pixel"
    version = 2
    Settings = PixelPairFilterSettings
    # Ours, not the paper's (which filters with CLIP cosine in (0.9, 0.98), METHOD.md 3.1),
    # tuned on synthetic scenes with one object edited, noise and global photometric changes.
    PRESETS = {
        "paper": {
            "similarity_min": 0.6,  # backstop for a broken scene; a 20% edit can score 0.65
            "structure_min": 0.5,  # a replaced scene scores 0.2-0.5, a 20% object edit 0.7 or more
            "changed_area_min": 0.002,  # ~8 of 64x64 pixels: below, nothing changed locally
            "changed_area_max": 0.4,  # more is not one object (a 20% edit measures 0.2-0.25)
            "median_diff_max": 3.0,  # edits sit under 1; brightness +10 alone gives ~4
        }
    }

    def __call__(self, records: list[Record]) -> list[Record]:
        for record in records:
            s = self.settings
            image_a = self.images.load(record, "a")
            a, b = (
                working_copy(image_a, s.size, s.blur),
                working_copy(self.images.load(record, "b"), s.size, s.blur),
            )
            if a.shape != b.shape:
                record.reject(self.name, f"size_mismatch: {a.shape[:2]} vs {b.shape[:2]}")
                continue
            lab_a, lab_b = to_lab(a), to_lab(b)
            diff = delta_e(lab_a, lab_b)
            residual = delta_e(to_lab(_global_map(a, b)), lab_b)
            scores = {
                "similarity": 1.0 - float(diff.mean()) / 100.0,
                "structure": _ssim(lab_a[..., 0], lab_b[..., 0]),
                "changed_area": float((residual > s.delta_e).mean()),
                "median_diff": float(np.median(diff)),
            }
            if s.outside:
                scores["outside_change"] = outside_change(
                    diff, record, image_a.shape[:2], s.delta_e, s.outside_margin, s.outside_region_limit
                )
            record.scores.update({f"{self.name}.{k}": v for k, v in scores.items()})
        return records


def _ssim(x: np.ndarray, y: np.ndarray) -> float:
    """Mean structural similarity of two lightness images, Gaussian window sigma 1.5 (Wang 2004)."""

    def mean(image: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(image, (0, 0), 1.5)

    mx, my = mean(x), mean(y)
    var_x, var_y, cov = mean(x * x) - mx * mx, mean(y * y) - my * my, mean(x * y) - mx * my
    ssim = ((2 * mx * my + _C1) * (2 * cov + _C2)) / ((mx * mx + my * my + _C1) * (var_x + var_y + _C2))
    return float(ssim.mean())


def _global_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Image a (float RGB) through the one affine colour map that best turns it into b.

    Least squares on the half of the pixels that differ least (first as they are, then after a
    first fit), so a local edit under half the image does not bend the map; a light pull towards
    the identity keeps it determined on scenes of few colours."""
    x = np.concatenate([a.reshape(-1, 3), np.ones((a.shape[0] * a.shape[1], 1), np.float32)], axis=1)
    y = b.reshape(-1, 3)
    error = np.square(x[:, :3] - y).sum(axis=1)
    for _ in range(2):
        best = error <= np.median(error)
        fx, fy = x[best], y[best]
        pull = _PULL * len(fx)  # ridge regression towards the identity map (eye(4, 3))
        fit = np.linalg.solve(fx.T @ fx + pull * np.eye(4), fx.T @ fy + pull * np.eye(4, 3))
        error = np.square(x @ fit - y).sum(axis=1)
    return np.clip(x @ fit, 0.0, 1.0).reshape(a.shape).astype(np.float32)
