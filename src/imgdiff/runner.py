"""The verbs behind the CLI and the Python API: run a recipe into a directory, re-decide, read.

Resume is "run the same command again". `run.json` records what the run was started with; a
changed source, run seed or shard spec refuses to resume without `fresh=True`. Thresholds set by
`rethreshold` are remembered in `run.json` and apply to later runs unless the command sets them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imgdiff.engine.local import Interrupted, Outcome, Shard, run_local
from imgdiff.engine.plan import Plan
from imgdiff.errors import UsageError
from imgdiff.recipe import load_recipe
from imgdiff.record import Record
from imgdiff.store import RunStore
from imgdiff.survey import Survey, survey

log = logging.getLogger("imgdiff")


@dataclass
class RunResult:
    out: Path
    outcome: Outcome
    stats: dict[str, Any]
    exports: dict[str, dict[str, Any]] = field(default_factory=dict)  # format -> summary


def run(
    recipe: str | Path | dict[str, Any],
    out: str | Path,
    *,
    limit: int | None = None,
    seed: int | None = None,
    overrides: list[str] = (),
    shard: str | Shard | None = None,
    fresh: bool = False,
    progress: bool = False,
    dry_run: bool = False,
) -> RunResult | Survey:
    """Run (or resume) `recipe` into `out`; returns the outcome and the funnel.

    With `dry_run`, validate everything and return what the run would do (a Survey), writing nothing."""
    if isinstance(shard, str):
        shard = Shard.parse(shard)
    if limit is not None and limit < 0:
        raise UsageError(f"--limit {limit}: must be 0 or more")
    root = Path(out)
    if shard is not None:
        root = root / "shards" / f"{shard.index}-of-{shard.count}"
    sets = list(overrides) + ([f"seed={seed}"] if seed is not None else [])
    store = RunStore(root)
    meta = store.read_meta()
    remembered = [] if fresh else _remembered(meta, sets)
    recipe_obj = load_recipe(recipe, remembered + sets)
    store.image_format = recipe_obj.run.image_format
    source = recipe_obj.build_source()
    source.check()
    plan = Plan.make(recipe_obj, source.fingerprint())
    if shard is not None:
        RunStore(out).check_location()
    if dry_run:
        store.check_location()
        # With --fresh nothing stored would be reused: survey against an empty (never created) store.
        surveyed = RunStore(root / ".tmp" / "dry-run-fresh") if fresh else store
        return survey(recipe_obj, surveyed, None if fresh else meta, limit, shard, root=root)
    store.create()
    with store.locked():
        if meta is not None and fresh:
            store.clear()  # only now: a bad recipe must not cost the user their run
            meta = None
        if meta is not None:
            check_resumable(meta, plan, shard, root)
        if remembered:
            log.warning("using thresholds set by `imgdiff rethreshold`: %s", " ".join(remembered))
        store.write_meta(_meta(plan, shard, limit, remembered))
        return _execute(plan, source, store, limit=limit, shard=shard, score=True, progress=progress)


def rethreshold(out: str | Path, overrides: list[str], progress: bool = False) -> RunResult:
    """Re-apply decisions with new thresholds from stored scores; never runs a stage's scoring."""
    store = RunStore(out)
    meta = store.read_meta()
    if meta is None:
        raise UsageError(f"'{out}' is not an imgdiff run directory (no run.json)")
    if not overrides:
        raise UsageError("rethreshold needs at least one --set <stage>.<threshold>=value")
    recipe = load_recipe(meta["recipe"], list(overrides))
    for item in overrides:
        key = item.partition("=")[0]
        stage, _, setting = key.partition(".")
        spec = next((s for s in recipe.stages if s.name == stage), None)
        if spec is None or setting not in spec.settings.decision_fields():
            raise UsageError(
                f"--set {key}: not a decision setting; rethreshold changes thresholds, caps and "
                "rules only (a setting that defines scores needs `imgdiff run` to recompute)"
            )
    store.image_format = recipe.run.image_format
    source = recipe.build_source()
    source.check()
    plan = Plan.make(recipe, source.fingerprint())
    shard = Shard(**meta["shard"]) if meta.get("shard") else None
    check_resumable(meta, plan, shard, store.root)
    remembered = dict(meta.get("decision_overrides", {}))
    remembered.update(item.split("=", 1) for item in overrides)
    with store.locked():
        store.write_meta({**meta, "recipe": recipe.to_dict(), "decision_overrides": remembered})
        return _execute(
            plan, source, store, limit=meta.get("limit"), shard=shard, score=False, progress=progress
        )


def load_records(out: str | Path) -> list[Record]:
    """The records of a run directory (records.jsonl), in canonical order."""
    path = Path(out) / "records.jsonl"
    if not path.is_file():
        raise UsageError(f"'{out}' has no records.jsonl (not an imgdiff run, or it has not finished a batch)")
    with path.open(encoding="utf-8") as handle:
        return [Record.from_dict(json.loads(line)) for line in handle if line.strip()]


def _execute(
    plan: Plan,
    source: Any,
    store: RunStore,
    *,
    limit: int | None,
    shard: Shard | None,
    score: bool,
    progress: bool,
) -> RunResult:
    store.sweep()
    invocation = store.invocation()
    handler = logging.FileHandler(store.root / "logs" / f"run-{invocation:05d}.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("imgdiff")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    started = time.perf_counter()
    try:
        log.info("%s %s (limit %s, shard %s)", "run" if score else "rethreshold", store.root, limit, shard)
        outcome = run_local(
            plan,
            source,
            store,
            limit=limit,
            shard=shard,
            score=score,
            progress=progress,
            invocation=invocation,
        )
        store.write_records(outcome.records)
        for (stage, table), rows in outcome.tables.items():  # decisions may have changed
            store.write_table(stage, table, rows)
        stats = _stats(outcome, time.perf_counter() - started)
        store.write_stats(stats)
        log.info(
            "finished: %s", json.dumps({k: stats[k] for k in ("records", "kept", "rejected", "pending")})
        )
    finally:
        logger.removeHandler(handler)
        handler.close()
    result = RunResult(store.root, outcome, stats)
    if outcome.interrupted:
        raise Interrupted(result)
    if stats["complete"] and plan.recipe.export:
        from imgdiff.export import export_run

        result.exports = export_run(store.root, list(plan.recipe.export), options=plan.recipe.export_options)
    return result


def _stats(outcome: Outcome, seconds: float) -> dict[str, Any]:
    kept = sum(r.kept for r in outcome.records)
    return {
        "records": len(outcome.records),
        "kept": kept,
        "rejected": len(outcome.records) - kept,
        "pending": len(outcome.pending),
        "complete": not outcome.interrupted and not outcome.pending,
        "pending_by_stage": {c.name: c.pending for c in outcome.counts if c.pending},
        "seconds": round(seconds, 3),
        "stages": [c.as_dict() for c in outcome.counts],
    }


def _remembered(meta: dict[str, Any] | None, sets: list[str]) -> list[str]:
    """rethreshold's remembered settings, less those this command sets itself."""
    given = {s.partition("=")[0] for s in sets}
    stored = (meta or {}).get("decision_overrides", {})
    return [f"{k}={v}" for k, v in stored.items() if k not in given]


def check_resumable(meta: dict[str, Any], plan: Plan, shard: Shard | None, root: Path) -> None:
    old_shard = Shard(**meta["shard"]) if meta.get("shard") else None
    changes = []
    if meta.get("source_fingerprint") != plan.source_fingerprint:
        changes.append("the source changed")
    if meta.get("seed") != plan.recipe.seed:
        changes.append(f"the seed changed ({meta.get('seed')} -> {plan.recipe.seed})")
    if old_shard != shard:
        changes.append(f"the shard spec changed ({old_shard} -> {shard})")
    if changes:
        raise UsageError(f"cannot resume {root}: {' and '.join(changes)}; pass --fresh to start over")


def _meta(plan: Plan, shard: Shard | None, limit: int | None, remembered: list[str]) -> dict[str, Any]:
    from imgdiff import __version__

    return {
        "imgdiff": __version__,
        "seed": plan.recipe.seed,
        "source_fingerprint": plan.source_fingerprint,
        "stage_fingerprints": plan.fingerprints,
        "shard": None if shard is None else {"index": shard.index, "count": shard.count},
        "limit": limit,
        "decision_overrides": {k: v for k, _, v in (s.partition("=") for s in remembered)},
        "recipe": plan.recipe.to_dict(),
        "versions": _versions(),
        "git_revision": _git_revision(),
    }


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("imgdiff", "numpy", "pillow", "opencv-python-headless", "pyarrow", "pydantic", "pyyaml"):
        with contextlib.suppress(PackageNotFoundError):
            out[name] = version(name)
    return out


def _git_revision() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        done = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None
