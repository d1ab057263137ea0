"""The verbs behind the CLI and the Python API: run a recipe into a directory, re-decide, export.

Each verb opens its run with `imgdiff.lifecycle` and hands it to `_execute`. Resume is "run the
same command again". `run.json` records what the run was started with; a changed source, run seed
or shard spec refuses to resume without `fresh=True`. Thresholds set by `rethreshold` are
remembered in `run.json` and apply to later runs unless the command sets them.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import logging
import math
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imgdiff.engine.choice import Choice, choose
from imgdiff.engine.grouped import run_grouped
from imgdiff.engine.local import Interrupted, Outcome, run_local
from imgdiff.engine.ray import RayOptions, check_available, run_ray
from imgdiff.engine.shard import Shard
from imgdiff.engine.steps import Mode
from imgdiff.errors import UsageError
from imgdiff.export import export_run
from imgdiff.export.options import ExportOptions
from imgdiff.lifecycle import OpenRun, open_dir, open_run, reopen
from imgdiff.store import RunStore, load_records
from imgdiff.survey import Survey, survey
from imgdiff.version import __version__

__all__ = ["RunResult", "export", "load_records", "rethreshold", "run"]

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
    engine: str = "local",
    ray: RayOptions | None = None,
    chunk_size: int | None = None,
    gpu_memory_gb: float | None = None,
) -> RunResult | Survey:
    """Run (or resume) `recipe` into `out`; returns the outcome and the funnel.

    With `dry_run`, validate everything and return what the run would do (a Survey), writing nothing.
    `engine="ray"` runs the steps on a Ray cluster (`ray`: its address and workers). The local
    engine loads models per group when their weights do not fit the GPU (`gpu_memory_gb`, else the
    CUDA device's memory; `engine.choice`); `chunk_size` forces that mode, `chunk_size` records at a
    time."""
    if engine == "ray":
        check_available()
    shard = Shard.parse(shard) if isinstance(shard, str) else shard
    if limit is not None and limit < 0:
        raise UsageError(f"--limit {limit}: must be 0 or more")
    if gpu_memory_gb is not None and not (math.isfinite(gpu_memory_gb) and gpu_memory_gb > 0):
        raise UsageError(f"--gpu-memory-gb {gpu_memory_gb}: a size in GB, more than 0")
    top = RunStore(out)
    store = top if shard is None else top.shard(shard.index, shard.count)
    meta = store.read_meta()
    sets = list(overrides) + ([f"seed={seed}"] if seed is not None else [])
    remembered = [] if fresh else _remembered(meta, sets)
    opened = open_run(
        store, recipe, remembered + sets, meta=None if fresh else meta, shard=shard, limit=limit
    )
    if shard is not None:
        top.check_location()
    if dry_run:
        store.check_location()
        # With --fresh nothing stored would be reused: survey against an empty (never created) store.
        return survey(opened, parts=RunStore(store.dry_run_dir) if fresh else store)
    store.create()
    with store.locked():
        if meta is not None and fresh:
            store.clear()  # only now: a bad recipe must not cost the user their run
        store.sweep()
        opened.check_resumable()
        if remembered:
            log.warning("using thresholds set by `imgdiff rethreshold`: %s", " ".join(remembered))
        store.write_meta(_meta(opened, remembered))
        ray = (ray or RayOptions()) if engine == "ray" else None  # the default cluster when none given
        return _execute(opened, Mode.COMPUTE, progress, ray, chunk_size, gpu_memory_gb)


def rethreshold(out: str | Path, overrides: list[str], progress: bool = False) -> RunResult:
    """Re-apply decisions with new thresholds from stored scores; never runs a stage's scoring."""
    open_dir(out)
    if not overrides:
        raise UsageError("rethreshold needs at least one --set <stage>.<threshold>=value")
    opened = reopen(out, overrides)
    for key in (item.partition("=")[0] for item in overrides):
        stage, _, setting = key.partition(".")
        spec = next((s for s in opened.recipe.stages if s.name == stage), None)
        if spec is None or setting not in spec.settings.decision_fields():
            raise UsageError(
                f"--set {key}: not a decision setting; rethreshold changes thresholds, caps and "
                "rules only (a setting that defines scores needs `imgdiff run` to recompute)"
            )
    opened.check_resumable()
    assert opened.meta is not None
    remembered = {**opened.meta.get("decision_overrides", {}), **dict(s.split("=", 1) for s in overrides)}
    with opened.store.locked():
        opened.store.sweep()
        opened.store.write_meta(
            {**opened.meta, "recipe": opened.recipe.to_dict(), "decision_overrides": remembered}
        )
        return _execute(opened, Mode.DECIDE_ONLY, progress)


def export(
    out: str | Path, formats: list[str], to: str | Path | None = None, options: ExportOptions | None = None
) -> dict[str, dict[str, Any]]:
    """Write a finished run in training-data formats: format -> summary."""
    store, _ = open_dir(out)
    warn_if_empty(store, "the export")
    with store.locked(read_only=True):
        return export_run(store.root, formats, Path(to) if to else None, options)


def warn_if_empty(store: RunStore, what: str) -> None:
    """Say so when the run's source gave no item (an unfinished run the export driver refuses)."""
    stats = store.read_stats() or {}
    if stats.get("complete") and not stats.get("records"):
        log.warning("%s: the run's source gave no items: %s is empty", store.root, what)


def _execute(
    run: OpenRun,
    mode: Mode,
    progress: bool,
    ray: RayOptions | None = None,
    chunk_size: int | None = None,
    gpu_memory_gb: float | None = None,
) -> RunResult:
    """The engine over an opened, locked run (Ray's when `ray` is given, else the local one in the
    mode `engine.choice` picks); then records.jsonl, side tables, stats, exports."""
    store = run.store
    invocation = store.invocation()
    started = time.perf_counter()
    with _log_to(store.log_path(invocation)):
        verb = "run" if mode is Mode.COMPUTE else "rethreshold"
        log.info("%s %s (limit %s, shard %s)", verb, store.root, run.limit, run.shard)
        choice = _choice(run, mode, ray, chunk_size, gpu_memory_gb)
        engine = run_local if ray is None else functools.partial(run_ray, options=ray)
        peaks = None
        if choice is not None and choice.grouped:
            engine = functools.partial(run_grouped, chunk_size=choice.chunk_size)
        try:
            outcome = engine(
                run.plan,
                run.source,
                store,
                limit=run.limit,
                shard=run.shard,
                **({"mode": mode} if engine is run_local else {}),
                progress=progress,
                invocation=invocation,
            )
            if isinstance(outcome, tuple):  # models per group: the outcome and each group's peak
                outcome, peaks = outcome
            store.write_records(outcome.records)
            for (stage, table), rows in outcome.tables.items():  # decisions may have changed
                store.write_table(stage, table, rows)
            stats = _stats(outcome, time.perf_counter() - started)
            if ray is not None:
                stats["engine"] = {"mode": "ray", "workers": ray.workers}
            elif choice is not None:  # a rethreshold computes nothing: no mode to say
                stats["engine"] = {**choice.stats(), **({"peak_gpu_gb": peaks} if peaks is not None else {})}
            store.write_stats(stats)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                store.cut_torn_parts()  # truncating needs no space
                exc.finished_stats = _finished(run, invocation)  # type: ignore[attr-defined]
            raise
        log.info(
            "finished: %s", json.dumps({k: stats[k] for k in ("records", "kept", "rejected", "pending")})
        )
    result = RunResult(store.root, outcome, stats)
    if not stats["records"]:
        log.warning("%s: the source gave no items (an empty file, or --limit 0): nothing to do", store.root)
    if outcome.interrupted:
        raise Interrupted(result)
    if stats["complete"] and run.recipe.export:
        try:
            formats, options = list(run.recipe.export), run.recipe.export_options
            result.exports = export_run(store.root, formats, options=options)
        except OSError as exc:  # the run is finished: its funnel is printed with the export's error
            exc.finished_stats = stats  # type: ignore[attr-defined]
            raise
    return result


def _choice(
    run: OpenRun, mode: Mode, ray: RayOptions | None, chunk_size: int | None, gpu_memory_gb: float | None
) -> Choice | None:
    """The local engine's mode for a computing run (None for Ray's and for a rethreshold), logged."""
    if ray is not None or mode is not Mode.COMPUTE:
        return None
    choice = choose(run.plan, chunk_size, gpu_memory_gb)
    log.info("engine: %s: %s", choice.mode, choice.why)
    return choice


@contextlib.contextmanager
def _log_to(path: Path) -> Any:
    """Everything the `imgdiff` logger says, down to DEBUG, also goes to this invocation's log."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        log.removeHandler(handler)
        handler.close()


def _finished(run: OpenRun, invocation: int) -> dict[str, Any]:
    """The funnel of the work on disk, for a run stopped by a full disk: the stored outputs
    walked without computing or writing anything (as `rethreshold` does)."""
    outcome = run_local(
        run.plan,
        run.source,
        run.store,
        limit=run.limit,
        shard=run.shard,
        mode=Mode.DECIDE_ONLY,
        progress=False,
        invocation=invocation,
    )
    return _stats(outcome, 0.0)


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


def _meta(run: OpenRun, remembered: list[str]) -> dict[str, Any]:
    return {
        "imgdiff": __version__,
        "seed": run.recipe.seed,
        "source_fingerprint": run.plan.source_fingerprint,
        "stage_fingerprints": run.plan.fingerprints,
        "shard": None if run.shard is None else {"index": run.shard.index, "count": run.shard.count},
        "limit": run.limit,
        "decision_overrides": {k: v for k, _, v in (s.partition("=") for s in remembered)},
        "recipe": run.recipe.to_dict(),
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
