"""The one body of code that takes a batch through steps; engines only decide where it runs.

For each step: records whose output is stored under the step's current fingerprint are reused;
the others are computed (or, when only deciding, left pending). The step's raw output is written
(artifacts first, then one part line per input); then the step's decision is applied. Rejected
records leave the stream; kept ones go on to the next step.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from imgdiff.record import Record
from imgdiff.store import PartWriter, RunStore


@dataclass
class StepCounts:
    """The funnel of one step over an invocation: data, not logs."""

    name: str
    entered: int = 0
    reused: int = 0
    computed: int = 0
    pending: int = 0
    out: int = 0
    kept: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage": self.name,
            "in": self.entered,
            "out": self.out,
            "kept": self.kept,
            "rejected": dict(sorted(self.rejected.items())),
            "reused": self.reused,
            "computed": self.computed,
            "pending": self.pending,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class Step:
    name: str
    fingerprint: str
    compute: Callable[[list[Record]], list[Record]]
    decide: Callable[[Record], None] | None
    done: dict[str, dict[str, Any]]  # input id -> stored part line
    writer: PartWriter | None
    counts: StepCounts
    side_rows: Callable[[Record, Record], list[dict[str, Any]]] | None = None
    table: list[tuple[tuple[int, list[int]], list[dict[str, Any]]]] = field(default_factory=list)

    def table_rows(self) -> list[dict[str, Any]]:
        """The side-table rows of every record seen, in canonical record order."""
        return [row for _, rows in sorted(self.table, key=lambda item: item[0]) for row in rows]


def _key(record: Record) -> tuple[int, tuple[int, ...]]:
    return record.source_index, tuple(record.child_index)


def run_step(
    step: Step, records: list[Record], store: RunStore, score: bool
) -> tuple[list[Record], list[Record]]:
    """Take kept records through one step: (outputs after the decision, pending inputs)."""
    counts = step.counts
    counts.entered += len(records)
    outputs: dict[str, list[Record]] = {}
    todo: list[Record] = []
    for record in records:
        entry = step.done.get(record.id)
        if entry is not None and entry["fp"] == step.fingerprint:
            outputs[record.id] = [Record.from_dict(d) for d in entry["out"]]
            counts.reused += 1
        else:
            todo.append(record)
    pending: list[Record] = []
    if todo and not score:
        pending, todo = todo, []
        counts.pending += len(pending)
    if todo:
        started = time.perf_counter()
        produced = step.compute(todo)
        outputs.update(_by_input(todo, produced, step.name))
        lines = []
        for record in todo:
            for out in outputs[record.id]:
                store.write_artifacts(out)
                store.images.keep(out)  # written once; later steps read them from memory
            lines.append(
                {"in": record.id, "fp": step.fingerprint, "out": [o.to_dict() for o in outputs[record.id]]}
            )
        assert step.writer is not None
        step.writer.append(lines)
        counts.computed += len(todo)
        counts.seconds += time.perf_counter() - started
    result = []
    for record in records:
        for out in outputs.get(record.id, []):
            scored = Record.from_dict(out.to_dict()) if step.side_rows is not None else None
            if out.kept and step.decide is not None:
                step.decide(out)
            if step.side_rows is not None and scored is not None:
                step.table.append((out.sort_key(), step.side_rows(scored, out)))
            counts.out += 1
            if out.kept:
                counts.kept += 1
            else:
                counts.rejected[(out.reason or "").split(":")[0] or "unknown"] += 1
            result.append(out)
    return result, pending


def _by_input(inputs: list[Record], produced: list[Record], step: str) -> dict[str, list[Record]]:
    """Match outputs to inputs by (source_index, child_index): the same record, or a fan-out child."""
    by_key = {_key(r): r.id for r in inputs}
    out: dict[str, list[Record]] = {r.id: [] for r in inputs}
    for record in produced:
        key = _key(record)
        parent = by_key.get(key) or by_key.get((key[0], key[1][:-1]))
        if parent is None:
            raise RuntimeError(f"stage {step} returned record {record.id}, which matches no input")
        out[parent].append(record)
    missing = [rid for rid, outs in out.items() if not outs]
    if missing:
        raise RuntimeError(f"stage {step} returned nothing for {missing[:3]}: reject, never drop")
    return out


def run_steps(
    steps: list[Step], records: list[Record], store: RunStore, score: bool = True
) -> tuple[list[Record], list[Record]]:
    """A batch through consecutive steps: (finished records, pending records)."""
    finished: list[Record] = []
    pending: list[Record] = []
    for step in steps:
        outputs, waiting = run_step(step, records, store, score)
        pending += waiting
        finished += [r for r in outputs if not r.kept]
        records = [r for r in outputs if r.kept]
    return finished + records, pending
