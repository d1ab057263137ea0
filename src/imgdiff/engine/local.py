"""The local engine: batches streamed through every step in this process.

Ctrl-C or SIGTERM asks it to stop: the batch in hand is finished, records.jsonl and stats.json are
written, and `Interrupted` is raised; the same command resumes. A second Ctrl-C stops at once
(finished parts are still safe on disk).
"""

from __future__ import annotations

import itertools
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from imgdiff.engine.batch import Step, StepCounts, run_steps
from imgdiff.engine.plan import Plan
from imgdiff.models import ModelPool
from imgdiff.record import Record, derive_seed, record_id
from imgdiff.sources.base import Source
from imgdiff.stages.base import Stage
from imgdiff.store import RunStore

log = logging.getLogger("imgdiff")


class Interrupted(Exception):
    """The run stopped cleanly on a signal; it is resumable."""


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        from imgdiff.errors import UsageError

        try:
            i, n = (int(x) for x in text.split("/"))
        except ValueError:
            raise UsageError(f"--shard '{text}': expected I/N, e.g. 0/4") from None
        if not 0 <= i < n:
            raise UsageError(f"--shard '{text}': need 0 <= I < N")
        return cls(i, n)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass
class Outcome:
    records: list[Record]
    pending: list[Record]
    counts: list[StepCounts]
    interrupted: bool = False
    tables: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)


def select(source: Source, limit: int | None, shard: Shard | None) -> Iterator[tuple[int, Any]]:
    """(source index, raw item): the first `limit` items, then this shard's slice of them."""
    items = enumerate(source.items())
    if limit is not None:
        items = itertools.islice(items, limit)
    for index, raw in items:
        if shard is None or index % shard.count == shard.index:
            yield index, raw


def run_local(
    plan: Plan,
    source: Source,
    store: RunStore,
    *,
    limit: int | None = None,
    shard: Shard | None = None,
    score: bool = True,
    progress: bool = True,
    invocation: int = 1,
) -> Outcome:
    recipe = plan.recipe
    steps = _steps(plan, source, store, invocation, score)
    total = source.count()
    if total is not None and limit is not None:
        total = min(total, limit)
    if total is not None and shard is not None:
        total = len(range(shard.index, total, shard.count))
    bars = [
        tqdm(
            total=total if i == 0 else None,
            desc=f"{s.name:<12}",
            unit="rec",
            position=i,
            disable=not progress or None,
            leave=True,
            dynamic_ncols=True,
        )
        for i, s in enumerate(steps)
    ]
    finished: list[Record] = []
    pending: list[Record] = []
    stop = _StopFlag()
    try:
        with stop.installed():
            selected = select(source, limit, shard)
            while batch := list(itertools.islice(selected, recipe.run.batch_size)):
                raws = {}
                records = []
                for index, raw in batch:
                    rid = record_id(plan.source_fingerprint, index)
                    raws[rid] = raw
                    records.append(Record(id=rid, source_index=index, seed=derive_seed(recipe.seed, rid)))
                steps[0].compute = lambda todo, raws=raws: source.load([(r, raws[r.id]) for r in todo])
                before = [s.counts.entered for s in steps]
                done, waiting = run_steps(steps, records, store, score)
                for bar, step, n in zip(bars, steps, before, strict=False):
                    bar.update(step.counts.entered - n)
                store.images.forget()  # the batch's pixels are on disk now; free the memory
                finished += done
                pending += waiting
                log.debug("batch of %d: %d finished, %d pending", len(records), len(done), len(waiting))
                if stop.requested:
                    break
    finally:
        for bar in bars:
            bar.close()
        for step in steps:
            if step.writer is not None:
                step.writer.close()
    tables = {
        (spec.name, spec.cls.SIDE_TABLE): step.table_rows()
        for spec, step in zip(recipe.stages, steps[1:], strict=True)
        if spec.cls.SIDE_TABLE
    }
    outcome = Outcome(finished, pending, [s.counts for s in steps], stop.requested, tables)
    return outcome


def _steps(plan: Plan, source: Source, store: RunStore, invocation: int, score: bool) -> list[Step]:
    recipe = plan.recipe
    writer = (lambda name: store.part_writer(name, invocation)) if score else (lambda name: None)
    steps = [
        Step(
            "source",
            plan.fingerprints["source"],
            lambda todo: todo,
            None,
            store.read_parts("source"),
            writer("source"),
            StepCounts("source"),
        )
    ]
    models = ModelPool(recipe.models)
    for spec in recipe.stages:
        stage = spec.build()
        steps.append(
            Step(
                spec.name,
                plan.fingerprints[spec.name],
                _set_up_on_first_use(stage, models, store),
                stage.decide,
                store.read_parts(spec.name),
                writer(spec.name),
                StepCounts(spec.name),
                side_rows=stage.side_rows if stage.SIDE_TABLE else None,
            )
        )
    return steps


def _set_up_on_first_use(
    stage: Stage, models: ModelPool, store: RunStore
) -> Callable[[list[Record]], list[Record]]:
    """Models load when a stage first has work: a resumed run whose work is done loads none."""
    ready = False

    def compute(records: list[Record]) -> list[Record]:
        nonlocal ready
        if not ready:
            stage.setup(models, store.images)
            ready = True
        return stage(records)

    return compute


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
