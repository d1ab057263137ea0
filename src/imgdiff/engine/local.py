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
    stored = {s.name: store.read_parts(s.name) for s in steps}
    writers = {s.name: store.part_writer(s.name, invocation) for s in steps}
    counts = [StepCounts(s.name) for s in steps]
    tables: list[list[tuple[Any, list[dict[str, Any]]]]] = [[] for _ in steps]
    total = selected_count(source, limit, shard)
    bars = [_bar(s.name, i, total if i == 0 else None, progress) for i, s in enumerate(steps)]
    finished: list[Record] = []
    pending: list[Record] = []
    stop = _StopFlag()
    try:
        with stop.installed():
            selected = select(source, limit, shard)
            while batch := list(itertools.islice(selected, plan.recipe.run.batch_size)):
                raws = {record_id(plan.source_fingerprint, index): raw for index, raw in batch}
                records = [
                    Record(id=rid, source_index=index, seed=derive_seed(plan.recipe.seed, rid))
                    for rid, (index, _) in zip(raws, batch, strict=True)
                ]
                before, waiting = len(finished), len(pending)
                for i, step in enumerate(steps):
                    result = process(step, records, stored[step.name], mode, store.place, raws)
                    _persist(result, store, writers[step.name])
                    counts[i].add(result.counts)
                    tables[i] += result.side_rows
                    bars[i].update(len(records))
                    pending += result.pending
                    finished += [r for r in result.outputs if not r.kept]
                    records = [r for r in result.outputs if r.kept]
                finished += records
                log.debug(
                    "batch of %d: %d finished, %d pending",
                    len(batch),
                    len(finished) - before,
                    len(pending) - waiting,
                )
                store.images.forget()  # the batch's pixels are on disk now; free the memory
                if stop.requested:
                    break
    finally:
        for bar in bars:
            bar.close()
        for writer in writers.values():
            writer.close()
    side = {
        (s.name, s.side_table): [row for _, rows in sorted(t, key=lambda item: item[0]) for row in rows]
        for s, t in zip(steps, tables, strict=True)
        if s.side_table
    }
    return Outcome(finished, pending, counts, stop.requested, side)


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
