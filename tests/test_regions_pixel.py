from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest

import imgdiff
from imgdiff.boxes import iou
from imgdiff.models import ModelPool
from imgdiff.record import Record, Region
from imgdiff.stages.regions.pixel import PixelRegions, region_mask
from imgdiff.store import ImageLoader
from pairs_data import write_pairs
from scenes import draw_pair
from stage_contract import StageContract


class TestPixelRegionsContract(StageContract):
    stage_cls = PixelRegions
    upstream = [{"pair_filter": {"method": "pixel"}}]


# -- helpers ----------------------------------------------------------------------------------------
def _stage(**settings: object) -> PixelRegions:
    stage = PixelRegions(PixelRegions.resolve_settings(dict(settings), "test"))
    stage.setup(ModelPool({}), ImageLoader(Path(".")))
    return stage


def _scored(a: np.ndarray, b: np.ndarray, **settings: object) -> Record:
    (record,) = _stage(**settings)([Record(id="x", source_index=0, seed=1, artifacts={"a": a, "b": b})])
    return record


def _decided(stage: PixelRegions, a: np.ndarray, b: np.ndarray) -> Record:
    (record,) = stage([Record(id="x", source_index=0, seed=1, artifacts={"a": a, "b": b})])
    stage.decide(record)
    return record


def _candidate(box: list[float], mean_diff: float, area: float = 0.01) -> Region:
    return Region(box=box, source="diff", scores={"area": area, "mean_diff": mean_diff, "fill": 0.8})


# -- behaviour --------------------------------------------------------------------------------------
def test_finds_the_changed_object_through_noise_and_shadows() -> None:
    """The quality target: precision and recall >= 0.9 at IoU >= 0.5 with the union box."""
    stage, hits, boxes = _stage(), 0, 0
    pairs = [
        draw_pair(seed, edit=edit, noise=2 + seed % 5) for seed in range(20) for edit in ("replace", "remove")
    ]
    for a, b, truth in pairs:
        record = _decided(stage, a, b)
        found = [region.box for region in record.regions] if record.kept else []
        hits += any(iou(box, truth) >= 0.5 for box in found)
        boxes += len(found)
    assert hits / len(pairs) >= 0.9 and hits / max(boxes, 1) >= 0.9, (hits, boxes, len(pairs))


def test_noise_alone_gives_no_region() -> None:
    stage = _stage()
    for seed in range(3):
        a, b, _ = draw_pair(seed, edit="none", noise=6.0)
        record = _decided(stage, a, b)
        assert record.reason == "no_regions: no changed area found" and record.regions == []
    assert _scored(a, b, blur=0.0, open_size=0).regions  # unsmoothed, the noise shows


def test_a_moved_soft_shadow_is_shading_not_a_change() -> None:
    a = np.full((256, 256, 3), (90, 140, 200), np.uint8)
    cv2.rectangle(a, (100, 100), (150, 150), (200, 60, 40), -1)
    b = a.copy()
    for image, (dx, dy) in ((a, (-14, -14)), (b, (14, 14))):  # the light moved
        shadow = np.zeros((256, 256), np.float32)
        cv2.rectangle(shadow, (100 + dx, 100 + dy), (150 + dx, 150 + dy), 0.45, -1)
        shadow[100:151, 100:151] = 0  # the object sits on top of its shadow
        image[:] = (image * (1 - cv2.GaussianBlur(shadow, (0, 0), 4))[..., None]).astype(np.uint8)
    assert _decided(_stage(), a, b).reason.startswith("no_regions")
    assert _scored(a, b, shadow_ratio=1.0).regions  # without the shading test, the shadows show


def test_masks_match_boxes_and_candidates_are_most_different_first() -> None:
    a, b, _ = draw_pair(3, size=640)  # above the working size: masks are upscaled to image a
    record = _scored(a, b)
    labels = record.artifacts["candidates"]["labels"]
    assert labels.shape == a.shape[:2] and labels.dtype == np.uint8 and labels.max() == len(record.regions)
    for i, region in enumerate(record.regions):
        assert region.scores["candidate"] == i and region.source == "diff"
        x, y, w, h = cv2.boundingRect(region_mask(labels, region).astype(np.uint8))
        assert region.box == [x, y, x + w, y + h]
    diffs = [r.scores["mean_diff"] for r in record.regions]
    assert diffs == sorted(diffs, reverse=True)
    assert record.scores["regions.candidates"] >= len(record.regions) > 0


def test_decide_applies_thresholds_then_nms_then_the_cap() -> None:
    stage = _stage(max_regions=2)  # paper preset otherwise: nms_iou 0.5, mean_diff_min 12
    candidates = [
        _candidate([0, 0, 100, 100], 60),
        _candidate([10, 10, 100, 100], 50),  # IoU 0.81 with the first
        _candidate([200, 0, 260, 60], 40),
        _candidate([300, 0, 340, 40], 8),  # too faint
        _candidate([0, 200, 50, 250], 30),  # over the cap
    ]
    assert stage.verdicts(candidates) == [
        None,
        "nms: IoU 0.81 > 0.5",
        None,
        "mean_diff_min: mean_diff 8 < 12",
        "cap: 2 regions kept already",
    ]
    record = Record(id="x", source_index=0, seed=1, regions=candidates)
    stage.decide(record)
    assert record.kept and [r.box for r in record.regions] == [[0, 0, 100, 100], [200, 0, 260, 60]]
    faint = Record(id="y", source_index=0, seed=1, regions=[_candidate([0, 0, 9, 9], 5, area=0.0001)])
    stage.decide(faint)
    assert faint.reason == "no_regions: all 1 candidates dropped (area_min 1)" and faint.regions == []


def test_redeciding_a_stored_copy_keeps_regions_pointing_at_their_masks() -> None:
    a, b, _ = draw_pair(5)
    b = b.copy()
    cv2.circle(b, (60, 60), 30, (255, 255, 0), -1)  # a second, smaller change
    scored = _scored(a, b)
    labels = scored.artifacts["candidates"]["labels"]
    stored = scored.to_dict()  # what the part line holds
    for settings in ({}, {"max_regions": 1}, {"area_min": 0.01}, {"nms_iou": None, "area_min": None}):
        record = Record.from_dict(stored)
        _stage(**settings).decide(record)
        assert record.kept
        for region in record.regions:
            x, y, w, h = cv2.boundingRect(region_mask(labels, region).astype(np.uint8))
            assert region.box == [x, y, x + w, y + h]
    one = Record.from_dict(stored)
    _stage(max_regions=1).decide(one)
    assert len(one.regions) == 1 and one.regions[0].scores["candidate"] == 0


def test_side_rows_give_every_candidate_with_why_it_was_dropped() -> None:
    stage = _stage(max_regions=1)
    scored = Record(
        id="x",
        source_index=0,
        seed=1,
        regions=[_candidate([0, 0, 50, 50], 40), _candidate([60, 0, 90, 30], 30)],
    )
    decided = Record.from_dict(scored.to_dict())
    stage.decide(decided)
    rows = stage.side_rows(scored, decided)
    assert [(r["id"], r["candidate"], r["kept"], r["reason"]) for r in rows] == [
        ("x", 0, True, None),
        ("x", 1, False, "cap: 1 regions kept already"),
    ]
    assert rows[1]["x2"] == 90 and rows[1]["mean_diff"] == 30 and "area" in rows[1]


def test_a_pair_of_two_sizes_is_rejected() -> None:
    a, b, _ = draw_pair(2, size=128)
    assert _scored(a, b[:64]).reason == "size_mismatch: (128, 128) vs (64, 128)"


def test_a_run_writes_masks_and_the_candidates_table_and_rethresholds(tmp_path: Path) -> None:
    pairs = write_pairs(tmp_path / "pairs", 8)
    recipe = {
        "seed": 0,
        "source": {"type": "pairs", "path": str(pairs)},
        "stages": [{"pair_filter": {"method": "pixel"}}, {"regions": {"method": "pixel"}}],
    }
    imgdiff.run(recipe, tmp_path / "run")
    table = pq.read_table(tmp_path / "run" / "stages" / "regions" / "candidates.parquet").to_pylist()
    kept = [r for r in imgdiff.load_records(tmp_path / "run") if r.kept]
    assert kept and sum(row["kept"] for row in table) == sum(len(r.regions) for r in kept)
    for record in kept:
        labels = np.load(tmp_path / "run" / record.aux["candidates"])["labels"]
        assert all(region_mask(labels, region).any() for region in record.regions)
    result = imgdiff.rethreshold(tmp_path / "run", ["regions.max_regions=1", "regions.nms_iou=0.3"])
    assert result.stats["pending"] == 0
    kept = [r for r in imgdiff.load_records(tmp_path / "run") if r.kept]
    assert all(len(r.regions) == 1 for r in kept)
    table = pq.read_table(tmp_path / "run" / "stages" / "regions" / "candidates.parquet").to_pylist()
    assert sum(row["kept"] for row in table) == len(kept)  # the side table follows the new decisions
    imgdiff.rethreshold(tmp_path / "run", ["regions.area_min=0.9", "regions.area_max=1"])
    table = pq.read_table(tmp_path / "run" / "stages" / "regions" / "candidates.parquet").to_pylist()
    assert table and not any(row["kept"] for row in table)
    assert all(row["reason"].startswith("area_min") for row in table)


@pytest.mark.parametrize("setting", ["delta_e", "blur", "close_size", "max_candidates"])
def test_score_defining_settings_are_not_decisions(setting: str) -> None:
    decisions = PixelRegions.Settings.decision_fields()
    assert setting not in decisions and {"nms_iou", "max_regions", "area_min"} <= decisions
