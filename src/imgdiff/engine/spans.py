"""The pieces the Ray engine and the models-per-group mode share: the rows of work left, `Work`
(what every span of an invocation needs), a `Span` that takes rows through one span of steps
(`Plan.spans()`: the source step, then each group) and persists them, and the count of what an
invocation computed.

A row is one record with work left: the step it starts at, the record as JSON, its pickled source
item (for step 0) and the number of the source batch it came from (a model's floats depend on what
else is in its batch, so both keep the streaming mode's batches).
"""

from __future__ import annotations

import json
import pickle
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from imgdiff.engine.batch import process
from imgdiff.engine.local import Outcome, _batches, make_steps
from imgdiff.engine.plan import Bounds, Plan
from imgdiff.engine.shard import Shard
from imgdiff.engine.steps import Mode, Step
from imgdiff.record import Record
from imgdiff.sources.base import Source
from imgdiff.store import PartWriter, RunStore

ROW_SCHEMA = pa.schema(
    [("start", pa.int64()), ("record", pa.string()), ("raw", pa.binary()), ("batch", pa.int64())]
)


@dataclass(frozen=True)
class Work:
    """What every span of one invocation needs, sent to the workers as is (it pickles)."""

    plan: Plan
    source: Source
    root: str  # the run directory
    image_format: str
    invocation: int

    @classmethod
    def of(cls, plan: Plan, source: Source, store: RunStore, invocation: int) -> Work:
        return cls(plan, source, str(store.root), store.image_format, invocation)


def pending_rows(
    plan: Plan, source: Source, store: RunStore, limit: int | None, shard: Shard | None
) -> Iterator[dict[str, Any]]:
    """One row per record with work left, found by walking the stored parts in decide-only mode."""
    steps = make_steps(plan, source, store)
    stored = {s.name: store.read_parts(s.name) for s in steps}
    for batch, (records, raws) in enumerate(_batches(plan, source, limit, shard)):
        for index, step in enumerate(steps):
            result = process(step, records, stored[step.name], Mode.DECIDE_ONLY, store.place, raws)
            for record in result.pending:
                raw = pickle.dumps(raws[record.id]) if index == 0 else None
                yield {"start": index, "record": json.dumps(record.to_dict()), "raw": raw, "batch": batch}
            records = [r for r in result.outputs if r.kept]
        store.images.forget()


class Span:
    """One span's steps, built where it runs (a Ray worker, or this process); each instance
    persists into part files of its own (`part-<invocation>-<writer>.jsonl`: one writer per file)."""

    def __init__(self, work: Work, bounds: Bounds) -> None:
        self.store = RunStore(work.root, work.image_format)
        self.first, self.last = bounds.first, bounds.last
        self.steps: list[Step] = make_steps(work.plan, work.source, self.store)[self.first : self.last + 1]
        writer, number = uuid.uuid4().hex[:12], work.invocation
        self.writers = {
            s.name: PartWriter(self.store.stage_dir(s.name) / f"part-{number:05d}-{writer}.jsonl")
            for s in self.steps
        }

    def __call__(self, batch: pa.Table) -> pa.Table:
        """The rows through this span's steps, one source batch at a time (whatever rows Ray
        bundled: a model's floats depend on what else is in its batch, so each sees the streaming
        mode's batches); rows for later spans pass by; the kept records come out as rows for the
        next span."""
        rows = batch.to_pylist()
        out = [r for r in rows if r["start"] > self.last]
        entering: dict[int, list[dict[str, Any]]] = {}
        for row in rows:
            if row["start"] <= self.last:
                entering.setdefault(row["batch"], []).append(row)
        for number in sorted(entering):
            out += self._through(entering[number], number)
            self.store.images.forget()  # the batch's pixels are on disk: free the memory
        return pa.Table.from_pylist(out, schema=ROW_SCHEMA)

    def _through(self, rows: list[dict[str, Any]], number: int) -> list[dict[str, Any]]:
        """One source batch's rows, each entering at its step; persisted step by step."""
        raws = {}
        live: list[Record] = []
        for index, step in enumerate(self.steps, self.first):
            for row in (r for r in rows if r["start"] == index):
                record = Record.from_dict(json.loads(row["record"]))
                live.append(record)
                if row["raw"] is not None:
                    raws[record.id] = pickle.loads(row["raw"])
            if not live:
                continue
            result = process(step, live, {}, Mode.COMPUTE, self.store.place, raws)
            for record in result.computed:  # artifacts first, then the part lines that name them
                self.store.write_artifacts(record)
                self.store.images.keep(record)
            self.writers[step.name].append(result.lines)
            live = [r for r in result.outputs if r.kept]
        row = {"start": self.last + 1, "raw": None, "batch": number}
        return [{**row, "record": json.dumps(r.to_dict())} for r in live]

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


def computed_counts(outcome: Outcome, store: RunStore, invocation: int) -> None:
    """The finishing decide-only pass reused what the workers computed now: count that as computed."""
    for counts in outcome.counts:
        computed = len(_lines_of(store, counts.name, invocation))
        counts.computed, counts.reused = computed, counts.reused - computed


def _lines_of(store: RunStore, stage: str, invocation: int) -> set[str]:
    """The input ids this invocation's workers wrote part lines for (one stage)."""
    ids: set[str] = set()
    for path in store.stage_dir(stage).glob(f"part-{invocation:05d}-*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                ids.add(json.loads(line)["in"])
            except (json.JSONDecodeError, KeyError):
                continue  # a line cut short by a kill
    return ids
