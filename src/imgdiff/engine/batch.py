"""The one body of code that takes a batch through a step; engines only decide where it runs.

`process(step, records, ...)` is a function of its arguments alone: records whose output is stored
under the step's fingerprint, for the same input, are reused; a stored output whose input has since
changed (an upstream decision kept other boxes) is re-based on the input as it is now, when the
step knows how (`rebase`); the others are computed (in `Mode.COMPUTE`) or left pending (in
`Mode.DECIDE_ONLY`); the step's decision is applied to every output. It returns the
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

from imgdiff.engine.plan import digest
from imgdiff.engine.steps import Mode, Step
from imgdiff.errors import UsageError
from imgdiff.record import Record


class DroppedRecords(RuntimeError):
    """Internal error: a step returned nothing for some inputs, or outputs that match no input."""


@dataclass
class StepCounts:
    """The funnel of one step over a batch or an invocation: data, not logs."""

    name: str
    entered: int = 0
    reused: int = 0
    rebased: int = 0  # of `reused`: stored outputs re-based on a changed input
    computed: int = 0
    pending: int = 0
    out: int = 0
    kept: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # reason code -> records
    seconds: float = 0.0

    def add(self, other: StepCounts) -> None:
        for name in ("entered", "reused", "rebased", "computed", "pending", "out", "kept", "seconds"):
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
            "rebased": self.rebased,
            "computed": self.computed,
            "pending": self.pending,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class StepResult:
    outputs: list[Record]  # after the decision, in input order (fan-out children in place)
    pending: list[Record]  # inputs left without an output (decide-only mode)
    computed: list[Record]  # the outputs computed now: their artifacts still to be written
    lines: list[dict[str, Any]]  # one part line per computed input: {"in", "fp", "in_fp", "out"}
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
    in_fps: dict[str, str] = {}  # the input's fingerprint where todo holds a stored output instead
    for record in records:
        entry = stored.get(record.id)
        reused = _reuse(step, record, entry, counts) if entry is not None else None
        if reused is not None and len(reused) == 1 and reused[0].kept and step.incomplete(reused[0]):
            # A re-decision reaches work the stored output lacks: the stage adds just that to it.
            in_fps[record.id] = input_fingerprint(record)
            todo.append(reused[0])
        elif reused is not None:
            outputs[record.id] = reused
        else:
            todo.append(record)
    counts.reused = len(outputs)
    pending: list[Record] = []
    if mode is Mode.DECIDE_ONLY:
        pending, todo = todo, []
        counts.pending = len(pending)
    computed, lines = _compute(step, todo, raws or {}, place, counts, outputs, in_fps) if todo else ([], [])
    decided, side_rows = _decide(step, records, outputs, counts)
    return StepResult(decided, pending, computed, lines, side_rows, counts)


def input_fingerprint(record: Record) -> str:
    """The input as a step received it, upstream decisions applied (its boxes, scores, edit)."""
    return digest(record.to_dict())


def _reuse(step: Step, record: Record, entry: dict[str, Any], counts: StepCounts) -> list[Record] | None:
    """The stored outputs for `record`, re-based if its input changed since; None: not reusable.

    A line without "in_fp" was written before inputs were fingerprinted: its input is taken as
    unchanged, as it was then."""
    if entry["fp"] != step.fingerprint:
        return None
    try:
        stored = [Record.from_dict(d) for d in entry["out"]]
    except ValueError as exc:  # written by a newer imgdiff
        raise UsageError(f"the stored output of step {step.name} for {record.id}: {exc}") from None
    if entry.get("in_fp", input_fingerprint(record)) == input_fingerprint(record):
        return stored
    rebased = step.rebase(stored, record)
    if rebased is not None:
        counts.rebased += 1
    return rebased


def _compute(
    step: Step,
    todo: list[Record],
    raws: Mapping[str, Any],
    place: Callable[[Record], None],
    counts: StepCounts,
    outputs: dict[str, list[Record]],
    in_fps: dict[str, str],
) -> tuple[list[Record], list[dict[str, Any]]]:
    """Compute `todo`, adding to `outputs`: (the computed outputs, one part line per input).
    `in_fps` holds the input fingerprints of records whose stored output is in `todo`."""
    started = time.perf_counter()
    # before compute: stages change records in place
    in_fps = {r.id: in_fps.get(r.id) or input_fingerprint(r) for r in todo}
    fresh = by_input(step.name, todo, step.compute(todo, raws))
    computed, lines = [], []
    for record in todo:
        for out in fresh[record.id]:
            place(out)
            computed.append(out)
        lines.append(
            {
                "in": record.id,
                "fp": step.fingerprint,
                "in_fp": in_fps[record.id],
                "out": [o.to_dict() for o in fresh[record.id]],
            }
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
