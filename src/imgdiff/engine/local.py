"""The local engine: batches streamed through every step in this process.

Per batch and step it calls the batch function (`engine.batch.process`), then persists what that
computed: artifacts first, then the part lines, so a part line on disk is finished work. Ctrl-C or
SIGTERM asks it to stop: the batch in hand is finished, records.jsonl and stats.json are written,
and `Interrupted` is raised; the same command resumes. A second Ctrl-C stops at once (finished
parts are still safe on disk).
"""

from __future__ import annotations

import itertools
import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from imgdiff.engine.batch import StepCounts, StepResult, process
from imgdiff.engine.plan import Plan
from imgdiff.engine.shard import Shard, select, selected_count
from imgdiff.engine.steps import Mode, SourceStep, StageStep, Step
from imgdiff.models import ModelPool
from imgdiff.record import Record, derive_seed, record_id
from imgdiff.sources.base import Source
from imgdiff.store import PartWriter, RunStore

log = logging.getLogger("imgdiff")

__all__ = ["Interrupted", "Outcome", "Shard", "run_local"]


class Interrupted(Exception):
    """The run stopped cleanly on a signal; it is resumable."""


@dataclass
class Outcome:
    records: list[Record]
    pending: list[Record]
    counts: list[StepCounts]
    interrupted: bool = False
    tables: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)


def make_steps(plan: Plan, source: Source, store: RunStore) -> list[Step]:
    models = ModelPool(plan.recipe.models)
    stages = [
        StageStep(spec.name, plan.fingerprints[spec.name], spec.build(), models, store.images)
        for spec in plan.recipe.stages
    ]
    return [SourceStep(plan.fingerprints["source"], source), *stages]


def run_local(
    plan: Plan,
    source: Source,
    store: RunStore,
    *,
    limit: int | None = None,
    shard: Shard | None = None,
    mode: Mode = Mode.COMPUTE,
    progress: bool = True,
    invocation: int = 1,
) -> Outcome:
    steps = make_steps(plan, source, store)
    walk = _Walk(steps, store, mode, invocation, progress, selected_count(source, limit, shard))
    stop = _StopFlag()
    try:
        with stop.installed():
            for records, raws in _batches(plan, source, limit, shard):
                walk.batch(records, raws)
                store.images.forget()  # the batch's pixels are on disk now; free the memory
                if stop.requested:
                    break
    finally:
        walk.close()
    return walk.outcome(stop.requested)


def _batches(
    plan: Plan, source: Source, limit: int | None, shard: Shard | None
) -> Iterator[tuple[list[Record], dict[str, Any]]]:
    """(records, raw items by id) of each batch of `batch_size` selected items."""
    selected = select(source, limit, shard)
    while batch := list(itertools.islice(selected, plan.recipe.run.batch_size)):
        raws = {record_id(plan.source_fingerprint, index): raw for index, raw in batch}
        records = [
            Record(id=rid, source_index=index, seed=derive_seed(plan.recipe.seed, rid))
            for rid, (index, _) in zip(raws, batch, strict=True)
        ]
        yield records, raws


class _Walk:
    """The local engine's state over one invocation: what each step has stored, its part writer,
    funnel, side rows and progress bar, and the records finished or left pending so far."""

    def __init__(
        self,
        steps: list[Step],
        store: RunStore,
        mode: Mode,
        invocation: int,
        progress: bool,
        total: int | None,
    ) -> None:
        self.steps, self.store, self.mode = steps, store, mode
        self.stored = {s.name: store.read_parts(s.name) for s in steps}
        self.writers = {s.name: store.part_writer(s.name, invocation) for s in steps}
        self.counts = {s.name: StepCounts(s.name) for s in steps}
        self.side_rows: dict[str, list[Any]] = {s.name: [] for s in steps}
        self.bars = {
            s.name: _bar(s.name, i, total if i == 0 else None, progress) for i, s in enumerate(steps)
        }
        self.finished: list[Record] = []
        self.pending: list[Record] = []

    def batch(self, records: list[Record], raws: dict[str, Any]) -> None:
        """One batch through every step: the batch function, then persist, then the kept go on."""
        before, waiting = len(self.finished), len(self.pending)
        for step in self.steps:
            result = process(step, records, self.stored[step.name], self.mode, self.store.place, raws)
            _persist(result, self.store, self.writers[step.name])
            self.counts[step.name].add(result.counts)
            self.side_rows[step.name] += result.side_rows
            self.bars[step.name].update(len(records))
            self.pending += result.pending
            self.finished += [r for r in result.outputs if not r.kept]
            records = [r for r in result.outputs if r.kept]
        self.finished += records
        done = len(self.finished) - before
        log.debug("batch of %d: %d finished, %d pending", len(raws), done, len(self.pending) - waiting)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        for writer in self.writers.values():
            writer.close()

    def outcome(self, interrupted: bool) -> Outcome:
        tables = {
            (s.name, s.side_table): [
                row for _, rows in sorted(self.side_rows[s.name], key=_first) for row in rows
            ]
            for s in self.steps
            if s.side_table
        }
        counts = [self.counts[s.name] for s in self.steps]
        return Outcome(self.finished, self.pending, counts, interrupted, tables)


def _first(item: tuple[Any, Any]) -> Any:
    return item[0]


def _persist(result: StepResult, store: RunStore, writer: PartWriter) -> None:
    """Artifacts first, then the part lines that name them."""
    for record in result.computed:
        store.write_artifacts(record)
        store.images.keep(record)  # written once; later steps read them from memory
    writer.append(result.lines)


def _bar(name: str, position: int, total: int | None, progress: bool) -> tqdm:
    return tqdm(
        total=total,
        desc=f"{name:<12}",
        unit="rec",
        position=position,
        disable=not progress or None,
        leave=True,
        dynamic_ncols=True,
    )


class _StopFlag:
    """SIGINT/SIGTERM set a flag the loop checks after each batch; a second SIGINT stops at once."""

    def __init__(self) -> None:
        self.requested = False

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("stop requested: finishing the batch in hand (Ctrl-C again to stop now)")

    @contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)
