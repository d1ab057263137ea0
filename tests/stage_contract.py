"""The contract every stage's tests reuse (like diffusers' pipeline test mixin).

Subclass `StageContract` in a stage's test file and set `stage_cls` (and `settings`, `upstream`,
`models` where the stage needs them): that subclass is the stage's fixture factory.
test_stage_contracts.py fails for any registered stage method without one. The batch is made by a
real run of the `pairs` source and the upstream stages, so each stage is checked on the records it
really receives. The contract: it pickles; an empty batch gives nothing; the same seed gives the
same output; a resumed run computes nothing; deciding from stored scores equals deciding fresh and
is idempotent; outputs do not depend on how the records are split into batches; and a stage that
drops a record is caught by the engine.
"""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

import imgdiff
from conftest import tree_bytes
from imgdiff.engine.batch import DroppedRecords, process
from imgdiff.engine.steps import Mode, StageStep
from imgdiff.errors import UsageError
from imgdiff.models import ModelEntry, ModelPool
from imgdiff.record import Record
from imgdiff.stages.base import Stage
from imgdiff.store import ImageLoader
from pairs_data import write_pairs


class StageContract:
    stage_cls: ClassVar[type[Stage]]
    settings: ClassVar[dict[str, Any]] = {}
    upstream: ClassVar[list[dict[str, Any]]] = []  # recipe stage entries that feed this stage
    models: ClassVar[dict[str, dict[str, Any]]] = {}  # the recipe's models: section

    # -- helpers ---------------------------------------------------------------------------------
    def recipe(self, pairs: Path, with_stage: bool = True) -> dict[str, Any]:
        entry = {self.stage_cls.name: {"method": self.stage_cls.method, **self.settings}}
        return {
            "seed": 0,
            "batch_size": 4,
            "source": {"type": "pairs", "path": str(pairs)},
            "models": self.models,
            "stages": [*self.upstream, *([entry] if with_stage else [])],
        }

    def make_stage(self) -> Stage:
        return self.stage_cls(self.stage_cls.resolve_settings(dict(self.settings), "test"))

    def ready_stage(self, run_dir: Path) -> Stage:
        stage = self.make_stage()
        entries = {n: ModelEntry(**e) for n, e in self.models.items()}
        stage.setup(ModelPool(entries), ImageLoader(run_dir))
        return stage

    def batch(self, tmp_path: Path) -> tuple[Path, list[Record]]:
        """The kept records that reach this stage, from a real run of the upstream steps."""
        pairs = write_pairs(tmp_path / "contract-pairs", 8)
        run_dir = tmp_path / "contract-upstream"
        imgdiff.run(self.recipe(pairs, with_stage=False), run_dir)
        return run_dir, [r for r in imgdiff.load_records(run_dir) if r.kept]

    # -- the contract ----------------------------------------------------------------------------
    def test_contract_pickles(self) -> None:
        stage = self.make_stage()
        copy = pickle.loads(pickle.dumps(stage))
        assert type(copy) is type(stage) and copy.settings == stage.settings

    def test_contract_empty_batch(self, tmp_path: Path) -> None:
        run_dir, _ = self.batch(tmp_path)
        assert self.ready_stage(run_dir)([]) == []

    def test_contract_same_seed_same_output(self, tmp_path: Path) -> None:
        run_dir, records = self.batch(tmp_path)
        assert records, "the contract batch is empty: the upstream stages rejected everything"
        first = self.ready_stage(run_dir)([dataclasses.replace(r) for r in _copies(records)])
        second = self.ready_stage(run_dir)([dataclasses.replace(r) for r in _copies(records)])
        assert [r.to_dict() for r in first] == [r.to_dict() for r in second]
        for x, y in zip(first, second, strict=True):
            assert x.artifacts.keys() == y.artifacts.keys()
            for name in x.artifacts:
                assert _arrays(x.artifacts[name]).keys() == _arrays(y.artifacts[name]).keys()
                for key, array in _arrays(x.artifacts[name]).items():
                    assert np.array_equal(array, _arrays(y.artifacts[name])[key])

    def test_contract_resume_skips_finished_work(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        calls = []
        original = self.stage_cls.__call__

        def counting(stage: Stage, records: list[Record]) -> list[Record]:
            calls.append(len(records))
            return original(stage, records)

        monkeypatch.setattr(self.stage_cls, "__call__", counting)
        pairs = write_pairs(tmp_path / "pairs", 8)
        recipe = self.recipe(pairs)
        imgdiff.run(recipe, tmp_path / "run")
        assert sum(calls) > 0
        before = tree_bytes(tmp_path / "run", "records.jsonl", "images", "aux")
        calls.clear()
        imgdiff.run(recipe, tmp_path / "run")
        assert calls == []
        assert tree_bytes(tmp_path / "run", "records.jsonl", "images", "aux") == before

    def test_contract_deciding_from_stored_scores_equals_deciding_fresh(self, tmp_path: Path) -> None:
        run_dir, records = self.batch(tmp_path)
        assert records, "the contract batch is empty: the upstream stages rejected everything"
        stage = self.ready_stage(run_dir)
        fresh = stage(_copies(records))  # as computed: pixels still in `artifacts`
        stored = _copies(fresh)  # as a part line holds them: what rethreshold decides on
        assert [r.to_dict() for r in _decided(stage, fresh)] == [r.to_dict() for r in _decided(stage, stored)]
        once = [r.to_dict() for r in fresh]
        assert [r.to_dict() for r in _decided(stage, _copies(fresh))] == once, "deciding twice changed it"

    def test_contract_batch_split_does_not_change_results(self, tmp_path: Path) -> None:
        run_dir, records = self.batch(tmp_path)
        records = records[:3]  # a batch of 3 against batches of 1 and 2; model stages are slow on more
        assert len(records) == 3, "the contract batch needs three records to split"
        stage = self.ready_stage(run_dir)
        whole = stage(_copies(records))
        split = stage(_copies(records[:1])) + stage(_copies(records[1:]))
        assert _close([r.to_dict() for r in split], [r.to_dict() for r in whole]), "another batch split"
        for x, y in zip(split, whole, strict=True):
            assert _same_artifacts(x, y), f"{x.id}: artifacts differ with another batch split"

    def test_contract_a_dropped_record_is_caught_by_the_engine(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        run_dir, records = self.batch(tmp_path)
        records = records[:3]
        stage = self.ready_stage(run_dir)
        original = self.stage_cls.__call__
        monkeypatch.setattr(self.stage_cls, "__call__", lambda s, batch: original(s, batch[1:]))
        step = StageStep(self.stage_cls.name, "fp", stage, None, ImageLoader(run_dir), ready=True)
        with pytest.raises(
            DroppedRecords, match=rf"step {self.stage_cls.name} .*{records[0].id}.*never drop"
        ):
            process(step, _copies(records), {}, Mode.COMPUTE, place=lambda record: None)

    def test_contract_unknown_setting_raises(self) -> None:
        with pytest.raises(UsageError, match="no_such_setting"):
            self.stage_cls.resolve_settings({**self.settings, "no_such_setting": 1}, "test")


def _arrays(artifact: Any) -> dict[str, np.ndarray]:
    """An artifact as named arrays: a dict of arrays (an .npz) or one array or image."""
    if isinstance(artifact, dict):
        return {k: np.asarray(v) for k, v in artifact.items()}
    return {"": np.asarray(artifact)}


def _close(x: Any, y: Any) -> bool:
    """Equal, but a model score may differ in float rounding between batch shapes (a batched matmul
    sums in another order): floats agree within 1e-5 relative (1e-6 absolute), all else exactly."""
    if isinstance(x, float) and isinstance(y, float):
        return bool(np.isclose(x, y, rtol=1e-5, atol=1e-6))
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(_close(x[k], y[k]) for k in x)
    if isinstance(x, list) and isinstance(y, list):
        return len(x) == len(y) and all(_close(a, b) for a, b in zip(x, y, strict=True))
    return x == y


def _copies(records: list[Record]) -> list[Record]:
    return [Record.from_dict(r.to_dict()) for r in records]


def _decided(stage: Stage, records: list[Record]) -> list[Record]:
    """The engine's rule: the decision applies to kept outputs."""
    for record in records:
        if record.kept:
            stage.decide(record)
    return records


def _same_artifacts(x: Record, y: Record) -> bool:
    if x.artifacts.keys() != y.artifacts.keys():
        return False
    for name in x.artifacts:
        a, b = _arrays(x.artifacts[name]), _arrays(y.artifacts[name])
        if a.keys() != b.keys() or not all(np.array_equal(a[k], b[k]) for k in a):
            return False
    return True
