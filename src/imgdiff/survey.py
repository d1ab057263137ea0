"""What a run would do, without doing it: `imgdiff status DIR` and `imgdiff run ... --dry-run`.

Both walk the selected source items through the steps in deciding-only mode (the engine reads the
stored parts, applies decisions, computes nothing and writes nothing). Per step, `done` inputs have a
stored output under the current fingerprint; `to compute` inputs reach the step and lack one; work
`waiting` in an earlier step may add more here once it is done.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imgdiff.engine.local import Outcome, run_local
from imgdiff.engine.plan import Plan
from imgdiff.engine.shard import Shard
from imgdiff.engine.steps import Mode
from imgdiff.lifecycle import OpenRun, reopen
from imgdiff.recipe import Recipe
from imgdiff.store import RunStore


@dataclass
class Survey:
    root: Path
    plan: Plan
    outcome: Outcome
    meta: dict[str, Any] | None
    limit: int | None
    shard: Shard | None
    blocked: str | None = None  # why a rerun would refuse to start, if it would

    def rows(self) -> list[dict[str, Any]]:
        rows, waiting = [], 0
        for counts in self.outcome.counts:
            rows.append(
                {"step": counts.name, "done": counts.reused, "to_compute": counts.pending, "waiting": waiting}
            )
            waiting += counts.pending
        return rows

    def report(self) -> str:
        recipe: Recipe = self.plan.recipe
        stages = ", ".join(f"{s.name}/{s.method}" for s in recipe.stages) or "none"
        records = RunStore(self.root).records_path
        written = sum(1 for _ in records.open()) if records.is_file() else None
        lines = [
            f"run directory: {self.root}" + ("" if self.meta else " (not started)"),
            f"recipe: source {recipe.source_type}, stages {stages}, seed {recipe.seed}, "
            f"limit {self.limit if self.limit is not None else 'none'}, shard {self.shard or 'none'}",
            f"records.jsonl: {'absent' if written is None else f'{written} records'}",
        ]
        if self.blocked:
            lines.append(f"a rerun refuses to start: {self.blocked}")
            return "\n".join(lines)
        table = [("step", "done", "to compute", "waiting upstream")]
        table += [(r["step"], r["done"], r["to_compute"], r["waiting"]) for r in self.rows()]
        widths = [max(len(str(row[i])) for row in table) for i in range(4)]
        for row in table:
            lines.append(
                "  ".join(
                    str(v).rjust(w) if i else str(v).ljust(w)
                    for i, (v, w) in enumerate(zip(row, widths, strict=True))
                )
            )
        todo = [f"{r['step']} for {r['to_compute']}" for r in self.rows() if r["to_compute"]]
        if todo:
            lines.append(
                f"a rerun computes {', '.join(todo)} records now; what that work keeps then goes "
                "on to the later steps"
            )
        else:
            lines.append("nothing to compute: a rerun only re-applies decisions and rewrites records.jsonl")
        return "\n".join(lines)


def status(out: str | Path) -> Survey:
    """What the same `imgdiff run` command would do next in run directory `out`."""
    return survey(reopen(out))


def survey(run: OpenRun, parts: RunStore | None = None) -> Survey:
    """Walk the opened run's items through its steps, deciding only, against the stored parts of
    `parts` (default: the run's own directory)."""
    outcome = run_local(
        run.plan,
        run.source,
        parts or run.store,
        limit=run.limit,
        shard=run.shard,
        mode=Mode.DECIDE_ONLY,
        progress=False,
    )
    blocked = None if run.refusal is None else run.refusal.why
    return Survey(run.store.root, run.plan, outcome, run.meta, run.limit, run.shard, blocked)
