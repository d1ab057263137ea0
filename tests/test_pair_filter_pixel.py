from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imgdiff.errors import UsageError
from imgdiff.models import ModelPool
from imgdiff.record import Record
from imgdiff.stages.pair_filter.pixel import PixelPairFilter
from imgdiff.store import ImageLoader
from stage_contract import StageContract


class TestPixelPairFilterContract(StageContract):
    stage_cls = PixelPairFilter


def _scored(a: np.ndarray, b: np.ndarray, **settings: object) -> Record:
    stage = PixelPairFilter(PixelPairFilter.resolve_settings(dict(settings), "test"))
    stage.setup(ModelPool({}), ImageLoader(Path(".")))
    record = Record(id="x", source_index=0, seed=1, artifacts={"a": a, "b": b})
    (record,) = stage([record])
    stage.decide(record)
    return record


def _scene() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(60, 190, size=(64, 64, 3), dtype=np.uint8)


def test_identical_images_score_one_and_are_rejected_as_a_failed_edit() -> None:
    a = _scene()
    record = _scored(a, a.copy())
    assert record.scores["pair_filter.similarity"] == 1.0
    assert record.scores["pair_filter.changed_area"] == 0.0
    assert record.rejected_by == "pair_filter" and record.reason.startswith("changed_area_min:")


def test_one_changed_object_is_kept() -> None:
    a = _scene()
    b = a.copy()
    b[10:26, 10:26] = [250, 0, 0]
    record = _scored(a, b)
    assert record.kept, record.reason
    assert 0.0 < record.scores["pair_filter.changed_area"] < 0.2


def test_global_change_is_rejected() -> None:
    a = _scene()
    b = np.clip(a.astype(int) + 40, 0, 255).astype(np.uint8)
    record = _scored(a, b)
    assert not record.kept and record.reason.split(":")[0] == "changed_area_max"


def test_thresholds_are_settings_named_after_scores() -> None:
    a = _scene()
    b = a.copy()
    b[0:32] = 0
    assert _scored(a, b, similarity_min=0.99).reason.startswith("similarity_min:")
    assert _scored(a, b, similarity_min=None, changed_area_max=None).kept


def test_unknown_preset_names_the_valid_ones() -> None:
    with pytest.raises(UsageError, match="unknown preset 'papr'.*did you mean 'paper'"):
        PixelPairFilter.resolve_settings({"preset": "papr"}, "test")
