"""The batch function (engine.batch.process): reuse, compute, decide-only, the funnel, and the
engine's own rule that a step rejects a record but never drops it."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

from imgdiff.engine.batch import DroppedRecords, process
from imgdiff.engine.steps import Mode, StageStep
from imgdiff.reason import Reason
from imgdiff.record import Record
from imgdiff.stages.base import Stage, StageSettings
from imgdiff.store import ImageLoader


class _Settings(StageSettings):
    value_min: float | None = 0.5


class _Halve(Stage):
    """A toy stage: score = source_index / 10; drops or invents records when told to."""

    name, method = "toy", "halve"
    Settings = _Settings

    def __init__(self, settings: StageSettings, misbehave: str = "") -> None:
        super().__init__(settings)
        self.misbehave = misbehave
        self.calls = 0

    def __call__(self, records: list[Record]) -> list[Record]:
        self.calls += 1
        for record in records:
            record.scores["toy.value"] = record.source_index / 10
        if self.misbehave == "drop":
            return [r for r in records if r.source_index != 3]
        if self.misbehave == "invent":
            return [*records, Record(id="stranger", source_index=99, seed=0)]
        return records


def _step(misbehave: str = "", fingerprint: str = "fp1") -> StageStep:
    stage = _Halve(_Halve.resolve_settings({}, "test"), misbehave)
    return StageStep("toy", fingerprint, stage, None, ImageLoader(Path(".")))


def _records(n: int = 8) -> list[Record]:
    return [Record(id=f"r{i}", source_index=i, seed=i) for i in range(n)]


def _process(step: StageStep, records: list[Record], stored: Any = None, mode: Mode = Mode.COMPUTE) -> Any:
    return process(step, records, stored or {}, mode, place=lambda record: None)


def test_a_dropped_record_is_an_internal_error_naming_the_step_and_ids() -> None:
    with pytest.raises(
        DroppedRecords, match=r"internal error: step toy returned nothing for 1 record\(s\) r3"
    ):
        _process(_step("drop"), _records())


def test_an_output_that_matches_no_input_is_an_internal_error() -> None:
    with pytest.raises(DroppedRecords, match="step toy returned record stranger, which matches no input"):
        _process(_step("invent"), _records())


def test_compute_scores_decides_and_counts() -> None:
    result = _process(_step(), _records())
    assert [r.kept for r in result.outputs] == [False] * 5 + [True] * 3
    assert result.outputs[0].reason == "value_min: value 0 < 0.5"
    assert result.outputs[0].reason.code == "value_min"
    assert [line["in"] for line in result.lines] == [f"r{i}" for i in range(8)]
    assert result.lines[0]["out"][0]["status"] == "kept"  # part lines hold the scores, not the decision
    counts = result.counts.as_dict()
    assert (counts["in"], counts["computed"], counts["kept"], counts["rejected"]) == (
        8,
        8,
        3,
        {"value_min": 5},
    )


def test_stored_outputs_are_reused_and_decide_only_leaves_the_rest_pending() -> None:
    step = _step()
    first = _process(step, _records())
    stored = {line["in"]: line for line in first.lines[:5]}
    again = _process(step, _records(), stored, Mode.DECIDE_ONLY)
    assert step.stage.calls == 1  # decide-only never computes
    assert [r.id for r in again.outputs] == [f"r{i}" for i in range(5)]
    assert [r.id for r in again.pending] == ["r5", "r6", "r7"]
    assert again.lines == [] and again.computed == []
    assert (again.counts.reused, again.counts.pending) == (5, 3)


def test_a_stored_output_of_another_fingerprint_is_recomputed() -> None:
    stored = {line["in"]: line for line in _process(_step(), _records()).lines}
    step = _step(fingerprint="fp2")
    result = _process(step, _records(), stored)
    assert step.stage.calls == 1 and result.counts.computed == 8 and result.counts.reused == 0


def test_the_result_does_not_depend_on_the_batch_split() -> None:
    whole = _process(_step(), _records())
    parts = [_process(_step(), _records()[:3]), _process(_step(), _records()[3:])]
    assert [r.to_dict() for r in whole.outputs] == [r.to_dict() for p in parts for r in p.outputs]
    assert whole.lines == [line for p in parts for line in p.lines]


def test_steps_pickle_for_an_engine_that_ships_them_to_workers() -> None:
    step = pickle.loads(pickle.dumps(_step()))
    assert _process(step, _records(2)).counts.computed == 2


def test_a_reason_keeps_its_text_and_gives_its_code() -> None:
    made = Reason("nms", "IoU 0.80 > 0.5")
    assert made == "nms: IoU 0.80 > 0.5" and (made.code, made.detail) == ("nms", "IoU 0.80 > 0.5")
    read = Reason.of("missing_file:no space kept")
    assert read == "missing_file:no space kept" and read.code == "missing_file"
    assert pickle.loads(pickle.dumps(read)).code == "missing_file"
    record = Record(id="x", source_index=0, seed=0)
    record.reject("source", "bad_thing: detail")
    assert Record.from_dict(record.to_dict()).reason.code == "bad_thing"
    with pytest.raises(ValueError):
        Reason("a: b")
