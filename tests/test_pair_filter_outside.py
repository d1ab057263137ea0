"""`pair_filter`/`pixel`'s `outside_change` on real photos (the copy-paste source's coco-mini edits)
with weight-free stand-in editors: a clean editor (the copy-paste edit, resampled to an editor's
working size and back, as `generate`/`instruct` does) against two that repaint the whole photo.
The edited region comes from the truth boxes, or without them from the difference map."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import SHARED_DATA
from imgdiff.models import ModelPool
from imgdiff.record import Record, derive_seed
from imgdiff.sources.copy_paste import CopyPasteSettings, CopyPasteSource
from imgdiff.stages.pair_filter.pixel import PixelPairFilter
from imgdiff.store import ImageLoader

COCO_MINI = SHARED_DATA / "coco-mini"
THRESHOLD = 2.0  # the photo-edit recipe's outside_change_max


@pytest.fixture(scope="module")
def edits() -> list[Record]:
    if not (COCO_MINI / "instances.json").is_file():
        pytest.skip("coco-mini test data not found")
    source = CopyPasteSource(
        CopyPasteSettings(images=str(COCO_MINI / "images"), instances=str(COCO_MINI / "instances.json"))
    )
    items = list(source.items())
    picked = range(0, len(items), 9)
    records = [Record(id=f"r{i}", source_index=i, seed=derive_seed(0, f"r{i}")) for i in picked]
    kept = [r for r in source.load([(r, items[r.source_index]) for r in records]) if r.kept]
    assert len(kept) >= 8
    return kept


def clean_editor(b: np.ndarray) -> np.ndarray:
    """A perfect editor seen through the working-size round trip (512 px area, Lanczos)."""
    h, w = b.shape[:2]
    scale = 512 / np.sqrt(h * w)
    small = Image.fromarray(b).resize((round(w * scale / 8) * 8, round(h * scale / 8) * 8), Image.LANCZOS)
    return np.asarray(small.resize((w, h), Image.LANCZOS))


def redrawing_editor(b: np.ndarray, seed: int) -> np.ndarray:
    """Redraws every texture: softer detail, more contrast, a warm cast, fresh grain."""
    x = cv2.GaussianBlur(clean_editor(b).astype(np.float32), (0, 0), 1.5)
    x = (x - x.mean()) * 1.08 + x.mean() + np.array([6.0, 0.0, -5.0])
    return np.clip(x + np.random.default_rng(seed).normal(0, 4, b.shape), 0, 255).astype(np.uint8)


def drifting_editor(b: np.ndarray) -> np.ndarray:
    """Keeps the detail but lets the colours drift a little everywhere."""
    drifted = clean_editor(b).astype(np.float32) * 0.97 + np.array([5.0, 2.0, -4.0])
    return np.clip(drifted, 0, 255).astype(np.uint8)


def _outside(record: Record, b: np.ndarray, truth: bool, **settings: object) -> Record:
    stage = PixelPairFilter(PixelPairFilter.resolve_settings({"outside": True, **settings}, "test"))
    stage.setup(ModelPool({}), ImageLoader(Path(".")))
    edited = Record(
        id=record.id, source_index=0, seed=1, truth=record.truth if truth else [],
        artifacts={"a": record.artifacts["a"], "b": b},
    )  # fmt: skip
    (edited,) = stage([edited])
    stage.decide(edited)
    return edited


@pytest.mark.parametrize("truth", [True, False], ids=["truth-region", "difference-region"])
def test_outside_change_separates_clean_edits_from_repaints(edits: list[Record], truth: bool) -> None:
    clean, repainted = [], []
    for k, record in enumerate(edits):
        b = record.artifacts["b"]
        clean.append(_outside(record, clean_editor(b), truth).scores["pair_filter.outside_change"])
        for image in (redrawing_editor(b, k), drifting_editor(b)):
            repainted.append(_outside(record, image, truth).scores["pair_filter.outside_change"])
    assert max(clean) < THRESHOLD / 4, clean
    assert min(repainted) > THRESHOLD * 1.25, repainted


def test_the_threshold_rejects_repaints_and_keeps_clean_edits(edits: list[Record]) -> None:
    record = edits[0]
    only = {"outside_change_max": THRESHOLD, "median_diff_max": None}  # checked before outside_change
    kept = _outside(record, clean_editor(record.artifacts["b"]), False, **only)
    dropped = _outside(record, drifting_editor(record.artifacts["b"]), False, **only)
    assert kept.status == "kept"
    assert dropped.status == "rejected" and dropped.reason.startswith("outside_change_max: outside_change")


def test_off_by_default_adds_no_score_and_keeps_the_fingerprint(edits: list[Record]) -> None:
    default = PixelPairFilter.resolve_settings({}, "test")
    assert "outside" not in default.score_defining() and "outside_margin" not in default.score_defining()
    assert "outside" in PixelPairFilter.resolve_settings({"outside": True}, "test").score_defining()
    stage = PixelPairFilter(default)
    stage.setup(ModelPool({}), ImageLoader(Path(".")))
    record = edits[0]
    (scored,) = stage([Record(id="x", source_index=0, seed=1, artifacts=dict(record.artifacts))])
    assert "pair_filter.outside_change" not in scored.scores


def test_a_whole_image_change_is_never_taken_for_the_edited_region() -> None:
    """Every pixel changed strongly: the difference map's region is capped, so the change counts."""
    a = np.full((64, 96, 3), 120, np.uint8)
    b = np.full((64, 96, 3), 200, np.uint8)
    scored = _outside(Record(id="x", source_index=0, seed=1, artifacts={"a": a}), b, False)
    assert scored.scores["pair_filter.outside_change"] > 20
