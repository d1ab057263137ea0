"""Whole-pair filter of the paper: CLIP image-embedding cosine of images a and b (METHOD.md 3.1).

Below the band, the edit broke the scene; above it, the edit failed (the images are the same).
Both images of every record of a batch go through ONE embedder call (the backend chunks it), and
the score `similarity` is stored; `decide` applies the band from the stored score only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imgdiff.models.roles import cosine_rows
from imgdiff.record import Record
from imgdiff.settings import model_ref
from imgdiff.stages.base import Stage, StageSettings

if TYPE_CHECKING:
    from imgdiff.models import ModelPool
    from imgdiff.store import ImageLoader


class ClipPairFilterSettings(StageSettings):
    SCORES = {"similarity": (-1.0, 1.0)}  # cosine of the two image embeddings

    embedder: str = model_ref("embedder")
    # Thresholds on `similarity`, checked in this order; a preset sets either the open or the
    # closed pair.
    similarity_gt: float | None = None
    similarity_lt: float | None = None
    similarity_min: float | None = None
    similarity_max: float | None = None


class ClipPairFilter(Stage):
    name = "pair_filter"
    method = "clip"
    version = 1
    Settings = ClipPairFilterSettings
    PRESETS = {
        # The research code: 0.9 < cosine < 0.98 (an open interval), CLIP ViT-B/32 (METHOD.md 3.1).
        "paper": {"similarity_gt": 0.9, "similarity_lt": 0.98},
        # The Data-Juicer recipe: 0.9 <= cosine <= 0.99 (METHOD.md 3.1).
        "data-juicer": {"similarity_min": 0.9, "similarity_max": 0.99},
    }

    def setup(self, models: ModelPool, images: ImageLoader) -> None:
        super().setup(models, images)
        self.embedder = models.get(self.settings.embedder)

    def __call__(self, records: list[Record]) -> list[Record]:
        if not records:
            return records
        pixels = [self.images.load(record, name) for record in records for name in "ab"]
        embeddings = self.embedder.embed_images(pixels)  # one call: a0, b0, a1, b1, ...
        similarity = cosine_rows(embeddings[0::2], embeddings[1::2])
        for record, value in zip(records, similarity, strict=True):
            record.scores[f"{self.name}.similarity"] = float(value)
        return records
