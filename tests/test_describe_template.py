from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from imgdiff.language.articles import with_article
from imgdiff.models import ModelPool
from imgdiff.record import Edit, Record, Region
from imgdiff.stages.describe.template import TEMPLATES, TemplateDescribe
from imgdiff.store import ImageLoader
from stage_contract import StageContract

W, H = 200, 100  # image a of the behaviour tests: 20,000 px; 1/400 of it is 50 px


class TestTemplateDescribeContract(StageContract):
    stage_cls = TemplateDescribe
    upstream = [{"pair_filter": {"method": "pixel"}}, {"regions": {"method": "pixel"}}]


def _stage(**settings: Any) -> TemplateDescribe:
    stage = TemplateDescribe(TemplateDescribe.resolve_settings(settings, "test"))
    stage.setup(ModelPool({}), ImageLoader(Path(".")))
    return stage


def _record(boxes: list[list[float]], seed: int = 1, kind: str = "replacement", **fields: Any) -> Record:
    fields.setdefault("edit", Edit(old="small red cube", new="blue cylinder"))
    regions = [Region(box=[float(v) for v in box], source="diff") for box in boxes]
    image = np.zeros((H, W, 3), dtype=np.uint8)
    return Record(
        id="r", source_index=0, seed=seed, kind=kind, regions=regions, artifacts={"a": image}, **fields
    )


def _described(record: Record, **settings: Any) -> Record:
    stage = _stage(**settings)
    (record,) = stage([record])
    stage.decide(record)
    return record


def _decisions(record: Record) -> list[str | None]:
    return [r.reason for r in record.regions]


BOX = [90, 40, 110, 60]  # in the centre, 400 px = 2% of the image


def test_replacement_names_both_objects_with_articles() -> None:
    for seed in range(40):
        region = _described(_record([BOX], seed=seed)).regions[0]
        assert region.captions == {"a": "a small red cube", "b": "a blue cylinder"}
        assert re.search("(a|A) small red cube", region.difference) and "a blue cylinder" in region.difference
        assert "in the centre" in region.difference and "red box" in region.difference


def test_removal_names_the_old_object_and_says_it_is_gone() -> None:
    for seed in range(40):
        record = _record([BOX], seed=seed, kind="removal", edit=Edit(old="umbrella", new=""))
        region = _described(record).regions[0]
        assert region.captions == {"a": "an umbrella", "b": "only the background"}
        assert "n umbrella" in region.difference
        assert re.search("gone|removed|background|missing|empty", region.difference)


def test_distractor_and_edit_free_pairs_are_generic_but_honest() -> None:
    distractor = _described(_record([BOX], kind="distractor")).regions[0]
    assert distractor.difference in {t.format(where="in the centre") for t in TEMPLATES["distractor"]}
    unknown = _described(_record([BOX], kind="unknown", edit=None)).regions[0]
    assert unknown.difference in {t.format(where="in the centre") for t in TEMPLATES["unknown"]}
    assert "cube" not in unknown.difference
    replaced = _described(_record([BOX], kind="replacement", edit=None)).regions[0]
    assert replaced.captions == {"a": "an object", "b": "a different object"}


def test_an_edit_with_an_empty_new_object_reads_as_a_removal() -> None:
    record = _described(_record([BOX], kind="unknown", edit=Edit(old="dog", new="")))
    assert record.regions[0].captions == {"a": "a dog", "b": "only the background"}


def test_articles() -> None:
    assert with_article("apple") == "an apple" and with_article("cube") == "a cube"
    assert with_article("an owl") == "an owl" and with_article("The  dog") == "The dog"
    assert with_article("two cats") == "two cats" and with_article("3 cups") == "3 cups"
    assert with_article("unicorn") == "a unicorn" and with_article("umbrella") == "an umbrella"
    assert with_article("hour glass") == "an hour glass" and with_article("") == ""
    for seed in range(40):
        record = _record([BOX], seed=seed, edit=Edit(old="a cat", new="an orange"))
        text = _described(record).regions[0].difference
        assert not re.search(r"\b(a|an) (a|an)\b", text, re.IGNORECASE), text


@pytest.mark.parametrize(
    ("box", "where"),
    [
        ([0, 0, 20, 20], "in the top-left corner"),
        ([180, 0, 200, 20], "in the top-right corner"),
        ([0, 80, 20, 100], "in the bottom-left corner"),
        ([180, 80, 200, 100], "in the bottom-right corner"),
        ([90, 0, 110, 20], "at the top"),
        ([0, 40, 20, 60], "on the left side"),
    ],
)
def test_position_words(box: list[float], where: str) -> None:
    for seed in range(10):
        assert where in _described(_record([box], seed=seed)).regions[0].difference


def test_phrasing_is_fixed_by_seed_and_varies_across_seeds() -> None:
    def text(seed: int) -> str:
        return _described(_record([BOX], seed=seed)).regions[0].difference

    assert [text(s) for s in range(10)] == [text(s) for s in range(10)]
    assert len({text(s) for s in range(50)}) >= 4
    assert all(len(TEMPLATES[kind]) >= 4 for kind in ("replacement", "removal", "distractor", "unknown"))


def test_paper_preset_skips_small_boxes_and_stops_after_five() -> None:
    boxes = [[0, 0, 5, 5], *[[10 * i, 40, 10 * i + 10, 50] for i in range(7)]]  # 25 px, then 7 of 100
    record = _described(_record(boxes))
    assert record.kept and record.scores["describe.regions"] == 8
    assert record.regions[0].scores["area"] == pytest.approx(25 / 20000)
    assert _decisions(record) == [
        "area_min: area 0.00125 < 0.0025",
        *[None] * 5,
        *["max_regions: 5 already accepted"] * 2,
    ]
    assert {r.rejected_by for r in record.regions} == {"describe", None}


def test_data_juicer_preset_skips_large_boxes_with_no_minimum_and_no_cap() -> None:
    boxes = [[0, 0, 100, 50], [0, 0, 5, 5], *[[10 * i, 40, 10 * i + 10, 50] for i in range(7)]]
    record = _described(_record(boxes), preset="data-juicer")
    assert _decisions(record) == ["area_max: area 0.25 > 0.1", *[None] * 8]


def test_no_accepted_box_rejects_the_record() -> None:
    record = _described(_record([[0, 0, 2, 2]]))
    assert record.rejected_by == "describe" and record.reason == "no_regions: none of 1 boxes accepted"
    assert _described(_record([])).reason.startswith("no_regions:")


def test_redeciding_a_stored_copy_changes_only_decisions() -> None:
    stage = _stage()
    (scored,) = stage([_record([[10 * i, 40, 10 * i + 10, 50] for i in range(7)])])
    stored = scored.to_dict()
    first, second = Record.from_dict(stored), Record.from_dict(stored)
    stage.decide(first)
    assert _decisions(first).count(None) == 5
    _stage(max_regions=2).decide(second)
    assert _decisions(second).count(None) == 2
    _stage(max_regions=None).decide(first)  # an already decided copy is decided afresh
    assert _decisions(first).count(None) == 7
    for x, y in zip(first.regions, second.regions, strict=True):
        assert (x.box, x.scores, x.captions, x.difference) == (y.box, y.scores, y.captions, y.difference)
    assert first.scores == second.scores
    assert "max_regions" in TemplateDescribe.Settings.decision_fields()


def test_boxes_dropped_upstream_are_left_alone() -> None:
    record = _record([BOX, BOX])
    record.regions[0].rejected_by, record.regions[0].reason = "regions", "iou: duplicate"
    record = _described(record)
    assert record.regions[0].difference is None and record.regions[0].reason == "iou: duplicate"
    assert record.kept and record.scores["describe.regions"] == 1
