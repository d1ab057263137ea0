"""`regions`/`semantic`: candidates from several sources, crops scored by models, decided from
stored scores. Deterministic colour models (semantic_fakes.py) check the logic; the tiny random
checkpoints check the real backends, batching and the run directory."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

import imgdiff
from imgdiff.boxes import iou
from imgdiff.errors import UsageError
from imgdiff.models import ModelEntry, ModelPool
from imgdiff.record import Record, Region
from imgdiff.stages.regions.objects import caption_difference
from imgdiff.stages.regions.semantic import SemanticRegions
from imgdiff.store import ImageLoader
from semantic_fakes import (
    CHANGED,
    STILL,
    BoxSegmenter,
    ColourEmbedder,
    ColourMatcher,
    FakePool,
    drawn_record,
)
from stage_contract import StageContract

needs_ultralytics = pytest.mark.skipif(
    find_spec("ultralytics") is None, reason="ultralytics is not installed"
)
TINY = {"embedder": "clip", "matcher": "blip", "segmenter": "fastsam", "candidates": ["diff", "segmenter"]}
OPEN = {**TINY, "preset": "imgdiff", "crop_similarity_lt": None}  # random weights: geometry only


@needs_ultralytics
class TestSemanticRegionsContract(StageContract):
    stage_cls = SemanticRegions
    settings = {**TINY, "preset": "imgdiff"}
    upstream = [{"pair_filter": {"method": "pixel"}}]

    @pytest.fixture(autouse=True)
    def _tiny_models(self, tiny_models: Any) -> None:
        self.models = {name: tiny_models(name) for name in ("clip", "blip", "fastsam")}


# -- helpers ----------------------------------------------------------------------------------------
def colour_stage(**settings: Any) -> tuple[SemanticRegions, FakePool]:
    pool = FakePool(
        clip=ColourEmbedder(), blip=ColourMatcher(), sam=BoxSegmenter([CHANGED, STILL, [0, 150, 60, 224]])
    )
    given = {"embedder": "clip", "matcher": "blip", "segmenter": "sam", **settings}
    stage = SemanticRegions(SemanticRegions.resolve_settings(given, "test"))
    stage.setup(pool, ImageLoader(Path(".")))  # type: ignore[arg-type]
    return stage, pool


def decided(stage: SemanticRegions, records: list[Record]) -> list[Record]:
    out = stage(records)
    for record in out:
        stage.decide(record)
    return out


# -- each crop against the object of its own image ---------------------------------------------------
def test_b_crop_is_matched_with_b_object_not_a_object() -> None:
    """The Data-Juicer rule (BOTH crops match, ITM >= 0.4) keeps the changed box only if b's crop is
    matched with `edit.new`: matched with a's object (the reference's bug) it scores 0 and the pair
    is rejected."""
    stage, pool = colour_stage(preset="data-juicer")
    (record,) = decided(stage, [drawn_record(0)])
    assert record.kept, record.reason
    assert [iou(r.box, CHANGED) >= 0.9 for r in record.regions] == [True]
    scores = record.regions[0].scores
    assert scores["match_a_itm"] > 0.9 and scores["match_b_itm"] > 0.4
    assert scores["crop_similarity"] < 0.85
    texts_of_b_crops = [
        text for crop, text in pool.get("blip").pairs if crop[15, 30].tolist() == [30, 30, 220]
    ]
    assert texts_of_b_crops and set(texts_of_b_crops) == {"blue disc"}


def test_paper_rule_keeps_the_changed_box_and_drops_the_unchanged_object() -> None:
    stage, _ = colour_stage(preset="paper")
    (record,) = decided(stage, [drawn_record(1)])
    assert record.kept and len(record.regions) == 1 and iou(record.regions[0].box, CHANGED) >= 0.9
    assert record.regions[0].source == "segmenter:sam"


def test_without_an_edit_the_objects_come_from_the_captions() -> None:
    stage, pool = colour_stage(preset="data-juicer")
    (record,) = decided(stage, [drawn_record(2, edit=False)])
    assert record.kept, record.reason
    assert {text for _, text in pool.get("blip").pairs} == {"red square", "blue disc"}
    assert caption_difference("a red car on a road", "a bus on a road") == ("red car", "bus")
    assert caption_difference("A cat.", "a cat") == ("", "")


def test_nothing_to_match_rejects_no_objects_unless_matching_is_off() -> None:
    stage, _ = colour_stage(preset="paper", candidates=["diff"])
    record = drawn_record(3, edit=False)
    record.caption_a = record.caption_b = ""
    (scored,) = stage([record])
    stored = scored.to_dict()
    assert "match_a_cosine" not in scored.regions[0].scores and scored.scores["regions.objects"] == 0
    stage.decide(scored)
    assert scored.reason.startswith("no_objects: match_rule any")
    off, _ = colour_stage(preset="paper", candidates=["diff"], match_rule="none")
    again = Record.from_dict(stored)
    off.decide(again)
    assert again.kept and iou(again.regions[0].box, CHANGED) > 0.7  # the pixel method's blurred box


# -- batching ------------------------------------------------------------------------------------------
def test_one_embedder_and_one_matcher_call_per_batch_whatever_the_crops() -> None:
    for n in (1, 5):
        stage, pool = colour_stage(preset="paper", candidates=["segmenter", "diff"])
        stage([drawn_record(seed) for seed in range(n)])
        crops = sum(pool.get("clip").calls)
        assert pool.get("clip").calls == [crops] and crops >= 2 * 3 * n  # both crops of >= 3 boxes
        assert len(pool.get("blip").calls) == 1 and len(pool.get("sam").calls) == 1
    stage, pool = colour_stage(preset="paper", crops_per_call=4)
    stage([drawn_record(seed) for seed in range(3)])
    calls = pool.get("clip").calls
    assert max(calls) == 4 and len(calls) == -(-sum(calls) // 4)


@needs_ultralytics
def test_tiny_models_batched_equal_one_at_a_time(tiny_models: Any) -> None:
    pool = ModelPool({name: ModelEntry(**tiny_models(name)) for name in ("clip", "blip", "fastsam")})
    stage = SemanticRegions(SemanticRegions.resolve_settings({**TINY, "preset": "paper"}, "test"))
    stage.setup(pool, ImageLoader(Path(".")))
    calls = {"embed": 0, "match": 0}
    embedder, matcher = pool.get("clip"), pool.get("blip")
    embed, match = embedder.embed_images, matcher.match

    def counted(name: str, call: Any) -> Any:
        def wrapper(*args: Any) -> Any:
            calls[name] += 1
            return call(*args)

        return wrapper

    embedder.embed_images, matcher.match = counted("embed", embed), counted("match", match)
    try:
        whole = stage([drawn_record(seed) for seed in range(4)])
        assert calls == {"embed": 1, "match": 1}
        single = [stage([drawn_record(seed)])[0] for seed in range(4)]
    finally:
        del embedder.embed_images, matcher.match
    assert sum(len(r.regions) for r in whole) > 8
    for x, y in zip(whole, single, strict=True):
        assert [r.box for r in x.regions] == [r.box for r in y.regions]
        for rx, ry in zip(x.regions, y.regions, strict=True):
            assert rx.scores.keys() == ry.scores.keys()
            for key in rx.scores:
                assert rx.scores[key] == pytest.approx(ry.scores[key], abs=1e-5), key


# -- deciding ------------------------------------------------------------------------------------------
def region(box: list[float], similarity: float, a: float = 0.5, b: float = 0.5) -> Region:
    scores = {"crop_similarity": similarity, "area": 0.01, "pixel_diff": 20.0, "changed_share": 0.5}
    scores |= {"match_a_cosine": a, "match_b_cosine": b, "match_a_itm": a, "match_b_itm": b}
    return Region(box=box, source="diff", scores=scores)


def test_decide_thresholds_match_rule_nms_and_cap() -> None:
    stage, _ = colour_stage(preset="paper", max_regions=2)
    candidates = [
        region([0, 0, 100, 100], 0.2),
        region([10, 10, 100, 100], 0.3),  # IoU 0.81 with the first
        region([200, 0, 260, 60], 0.4, a=0.1, b=0.1),  # neither crop shows its object
        region([300, 0, 340, 40], 0.9),  # the crops are alike
        region([200, 200, 260, 260], 0.5, a=0.1, b=0.6),  # one crop is enough for `any`
        region([0, 200, 50, 250], 0.6),  # over the cap
    ]
    assert stage.verdicts(candidates) == [
        None,
        "nms: IoU 0.81 > 0.5",
        "match_any: match_a_cosine 0.1 <= 0.35",
        "crop_similarity_lt: crop_similarity 0.9 >= 0.85",
        None,
        "cap: 2 regions kept already",
    ]
    strict, _ = colour_stage(preset="data-juicer")
    assert strict.verdicts([region([0, 0, 9, 9], 0.5, a=0.9, b=0.39)]) == [
        "match_all: match_b_itm 0.39 < 0.4"
    ]
    record = Record(
        id="x", source_index=0, seed=1, regions=[region([0, 0, 9, 9], 0.95)], scores={"regions.objects": 2}
    )
    stage.decide(record)
    assert record.reason == "no_regions: all 1 candidates dropped (crop_similarity_lt 1)"


def test_settings_ask_for_the_models_they_need() -> None:
    with pytest.raises(UsageError, match="set segmenter"):
        SemanticRegions.resolve_settings({"embedder": "clip", "matcher": "blip"}, "regions")
    with pytest.raises(UsageError, match="needs a matcher"):
        SemanticRegions.resolve_settings({"embedder": "clip", "segmenter": "sam"}, "regions")
    settings = SemanticRegions.resolve_settings(
        {"embedder": "clip", "candidates": ["diff"], "match_rule": "none"}, "r"
    )
    assert settings.matcher is None


# -- the run directory: side table, masks, rethreshold without models ------------------------------------
@needs_ultralytics
def test_side_table_masks_and_rethreshold_without_models(
    tmp_path: Path, tiny_models: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = {
        "seed": 0,
        "batch_size": 4,
        "source": {"type": "synthetic", "count": 6, "size": 128},
        "models": {name: tiny_models(name) for name in ("clip", "blip", "fastsam")},
        "stages": [
            {"regions": {"method": "semantic", "preset": "imgdiff", **TINY, "crop_similarity_lt": None}}
        ],
    }
    out = tmp_path / "run"
    imgdiff.run(recipe, out)
    records = imgdiff.load_records(out)
    table = pq.read_table(out / "stages" / "regions" / "candidates.parquet").to_pylist()
    assert len(table) == sum(
        r.scores["regions.candidates"] for r in records if "regions.candidates" in r.scores
    )
    assert {row["source"].split("+")[0] for row in table} <= {"diff", "segmenter:fastsam"}
    with_masks = 0
    for record in records:
        if "masks" not in record.aux:
            continue
        masks = ImageLoader(out).load(record, "masks")
        assert {"truth_a", "truth_b"} <= masks.keys()  # the source's masks stay
        rows = {row["candidate"]: row for row in table if row["id"] == record.id}
        for key, mask in masks.items():
            if key.startswith("candidate_"):
                row = rows[int(key.split("_")[1])]
                box = [int(np.floor(row["x1"])), int(np.floor(row["y1"])), int(row["x2"]), int(row["y2"])]
                assert mask.dtype == bool and mask.shape == (box[3] - box[1], box[2] - box[0])
                with_masks += 1
    assert with_masks > 0
    kept = sum(len(r.regions) for r in records)

    def no_models(*args: Any) -> None:
        raise AssertionError("rethreshold loaded a model")

    monkeypatch.setattr(ModelPool, "get", no_models)
    imgdiff.rethreshold(out, ["regions.max_regions=1", "regions.pixel_diff_min=null"])
    after = imgdiff.load_records(out)
    assert all(len(r.regions) <= 1 for r in after) and sum(len(r.regions) for r in after) <= kept
    assert sum(r.kept for r in after) >= sum(r.kept for r in records)
