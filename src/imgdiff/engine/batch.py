"""The one body of code that takes a batch through a step; engines only decide where it runs.

`process(step, records, ...)` is a function of its arguments alone: records whose output is stored
under the step's fingerprint are reused; the others are computed (in `Mode.COMPUTE`) or left
pending (in `Mode.DECIDE_ONLY`); the step's decision is applied to every output. It returns the
outputs, the part lines of what it computed, the side-table rows and the funnel counts, and writes
nothing: the engine persists a result (artifacts first, then the part lines) before the next step
reads the batch. A step must return at least one output for every input: reject, never drop.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from imgdiff.engine.steps import Mode, Step
from imgdiff.record import Record


class DroppedRecords(RuntimeError):
    """Internal error: a step returned nothing for some inputs, or outputs that match no input."""


@dataclass
class StepCounts:
    """The funnel of one step over a batch or an invocation: data, not logs."""

    name: str
    entered: int = 0
    reused: int = 0
    computed: int = 0
    pending: int = 0
    out: int = 0
    kept: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # reason code -> records
    seconds: float = 0.0

    def add(self, other: StepCounts) -> None:
        for name in ("entered", "reused", "computed", "pending", "out", "kept", "seconds"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.rejected.update(other.rejected)

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
class StepResult:
    outputs: list[Record]  # after the decision, in input order (fan-out children in place)
    pending: list[Record]  # inputs left without an output (decide-only mode)
    computed: list[Record]  # the outputs computed now: their artifacts still to be written
    lines: list[dict[str, Any]]  # one part line per computed input: {"in", "fp", "out"}
    side_rows: list[tuple[tuple[int, list[int]], list[dict[str, Any]]]]  # (record order, rows)
    counts: StepCounts


def process(
    step: Step,
    records: list[Record],
    stored: Mapping[str, dict[str, Any]],
    mode: Mode,
    place: Callable[[Record], None],
    raws: Mapping[str, Any] | None = None,
) -> StepResult:
    """Take a batch of kept records through one step.

    `stored`: input id -> the step's stored part line; `place` names the files of a record's
    artifacts (record.images / record.aux) without writing them; `raws`: the source items, by id
    (the source step only)."""
    counts = StepCounts(step.name, entered=len(records))
    outputs: dict[str, list[Record]] = {}
    todo: list[Record] = []
    for record in records:
        entry = stored.get(record.id)
        if entry is not None and entry["fp"] == step.fingerprint:
            stored_out = [Record.from_dict(d) for d in entry["out"]]
            if len(stored_out) == 1 and stored_out[0].kept and step.incomplete(stored_out[0]):
                todo.append(stored_out[0])  # a re-decision reaches work it lacks: the stage adds just that
            else:
                outputs[record.id] = stored_out
        else:
            todo.append(record)
    counts.reused = len(outputs)
    pending: list[Record] = []
    if mode is Mode.DECIDE_ONLY:
        pending, todo = todo, []
        counts.pending = len(pending)
    computed, lines = _compute(step, todo, raws or {}, place, counts, outputs) if todo else ([], [])
    decided, side_rows = _decide(step, records, outputs, counts)
    return StepResult(decided, pending, computed, lines, side_rows, counts)


def _compute(
    step: Step,
    todo: list[Record],
    raws: Mapping[str, Any],
    place: Callable[[Record], None],
    counts: StepCounts,
    outputs: dict[str, list[Record]],
) -> tuple[list[Record], list[dict[str, Any]]]:
    """Compute `todo`, adding to `outputs`: (the computed outputs, one part line per input)."""
    started = time.perf_counter()
    fresh = by_input(step.name, todo, step.compute(todo, raws))
    computed, lines = [], []
    for record in todo:
        for out in fresh[record.id]:
            place(out)
            computed.append(out)
        lines.append(
            {"in": record.id, "fp": step.fingerprint, "out": [o.to_dict() for o in fresh[record.id]]}
        )
    outputs.update(fresh)
    counts.computed = len(todo)
    counts.seconds = time.perf_counter() - started
    return computed, lines


def _decide(
    step: Step, records: list[Record], outputs: dict[str, list[Record]], counts: StepCounts
) -> tuple[list[Record], list[tuple[tuple[int, list[int]], list[dict[str, Any]]]]]:
    """Apply the step's decision to every kept output, in input order; count the funnel."""
    decided, side_rows = [], []
    for record in records:
        for out in outputs.get(record.id, []):
            scored = Record.from_dict(out.to_dict()) if step.side_table else None
            if out.kept:
                step.decide(out)
            if scored is not None:
                side_rows.append((out.sort_key(), step.side_rows(scored, out)))
            counts.out += 1
            if out.kept:
                counts.kept += 1
            else:
                counts.rejected[out.reason.code if out.reason else "unknown"] += 1
            decided.append(out)
    return decided, side_rows


def by_input(step: str, inputs: list[Record], produced: list[Record]) -> dict[str, list[Record]]:
    """Match outputs to inputs by (source_index, child_index): the same record, or a fan-out child.
    Raises DroppedRecords, naming the step and the ids, when an input has no output."""
    by_key = {_key(r): r.id for r in inputs}
    out: dict[str, list[Record]] = {r.id: [] for r in inputs}
    for record in produced:
        key = _key(record)
        parent = by_key.get(key) or by_key.get((key[0], key[1][:-1]))
        if parent is None:
            raise DroppedRecords(
                f"internal error: step {step} returned record {record.id}, which matches no input"
            )
        out[parent].append(record)
    missing = [rid for rid, outs in out.items() if not outs]
    if missing:
        raise DroppedRecords(
            f"internal error: step {step} returned nothing for {len(missing)} record(s) "
            f"{', '.join(missing[:5])}: a step must reject a record, never drop it"
        )
    return out


def _key(record: Record) -> tuple[int, tuple[int, ...]]:
    return record.source_index, tuple(record.child_index)
