"""Whole-pair filter without weights: how similar are the two images, and how much changed?

Both images are reduced to grey at `size` x `size` (area averaging), then:
- `similarity` = 1 - mean absolute difference / 255: a failed edit scores 1, a broken scene low;
- `changed_area` = share of pixels whose difference exceeds `pixel_delta`: an object edit changes
  a small share, a global photometric change none (below the delta) or nearly all.
Scores are computed per record, so they do not depend on how records are batched.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from imgdiff.record import Record
from imgdiff.stages.base import Stage, StageSettings


class PixelPairFilterSettings(StageSettings):
    size: int = 64
    pixel_delta: int = 24  # grey levels (0-255) above which a pixel counts as changed
    similarity_min: float | None = None
    similarity_max: float | None = None
    changed_area_min: float | None = None
    changed_area_max: float | None = None


class PixelPairFilter(Stage):
    name = "pair_filter"
    method = "pixel"
    version = 1
    Settings = PixelPairFilterSettings
    # Not in the paper (which filters with CLIP): our defaults for a weight-free band.
    PRESETS = {
        "paper": {
            "similarity_min": 0.8,
            "changed_area_min": 0.001,
            "changed_area_max": 0.5,
        }
    }

    def __call__(self, records: list[Record]) -> list[Record]:
        for record in records:
            a = self._grey(self.images.load(record, "a"))
            b = self._grey(self.images.load(record, "b"))
            diff = np.abs(a - b)
            record.scores["pair_filter.similarity"] = float(1.0 - diff.mean() / 255.0)
            record.scores["pair_filter.changed_area"] = float((diff > self.settings.pixel_delta).mean())
        return records

    def _grey(self, rgb: np.ndarray) -> np.ndarray:
        size = self.settings.size
        image = Image.fromarray(rgb).convert("L").resize((size, size), Image.Resampling.BOX)
        return np.asarray(image, dtype=np.float64)
