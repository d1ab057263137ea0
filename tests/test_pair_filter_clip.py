"""`pair_filter`/`clip`: the CLIP cosine of the two images, one embedder call per batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from imgdiff.models import ModelEntry, ModelPool
from imgdiff.models.roles import cosine_rows
from imgdiff.record import Record
from imgdiff.stages.pair_filter.clip import ClipPairFilter
from imgdiff.store import ImageLoader
from semantic_fakes import ColourEmbedder, FakePool, drawn_record
from stage_contract import StageContract


class TestClipPairFilterContract(StageContract):
    stage_cls = ClipPairFilter
    settings = {"embedder": "clip"}

    @pytest.fixture(autouse=True)
    def _tiny_model(self, tiny_models: Any) -> None:
        self.models = {"clip": tiny_models("clip")}


def stage(pool: Any, **settings: Any) -> ClipPairFilter:
    made = ClipPairFilter(ClipPairFilter.resolve_settings({"embedder": "clip", **settings}, "test"))
    made.setup(pool, ImageLoader(Path(".")))
    return made


def test_similarity_is_the_cosine_of_the_two_images_in_one_call(tiny_models: Any) -> None:
    pool = ModelPool({"clip": ModelEntry(**tiny_models("clip"))})
    records = [drawn_record(seed) for seed in range(3)]
    embedder = pool.get("clip")
    expected = cosine_rows(
        embedder.embed_images([r.artifacts["a"] for r in records]),
        embedder.embed_images([r.artifacts["b"] for r in records]),
    )
    out = stage(pool)(records)
    np.testing.assert_allclose([r.scores["pair_filter.similarity"] for r in out], expected, atol=1e-5)
    fakes = FakePool(clip=ColourEmbedder())
    stage(fakes)([drawn_record(seed) for seed in range(5)])
    assert fakes.get("clip").calls == [10]


@pytest.mark.parametrize(
    ("preset", "value", "reason"),
    [
        ("paper", 0.9, "similarity_gt: similarity 0.9 <= 0.9"),
        ("paper", 0.95, None),
        ("paper", 0.98, "similarity_lt: similarity 0.98 >= 0.98"),
        ("data-juicer", 0.9, None),
        ("data-juicer", 0.99, None),
        ("data-juicer", 0.995, "similarity_max: similarity 0.995 > 0.99"),
    ],
)
def test_presets_open_and_closed_bands(preset: str, value: float, reason: str | None) -> None:
    record = Record(id="x", source_index=0, seed=0, scores={"pair_filter.similarity": value})
    stage(FakePool(clip=ColourEmbedder()), preset=preset).decide(record)
    assert record.reason == reason
