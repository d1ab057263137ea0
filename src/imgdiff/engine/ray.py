"""The Ray engine: the same steps and batch function as the local engine, on a Ray cluster.

The driver first finds the work: it walks the selected items through every step in decide-only
mode (the batch function reusing stored part lines), so finished inputs are skipped before anything
is scheduled and each unfinished record enters the pipeline at the step where it stopped. Ray Data
then takes those rows through the source step (CPU tasks) and each of `Plan.groups()` in turn: a
group that names models is one actor pool (its steps built, and their models loaded, once per
actor), a weight-free group runs as CPU tasks. Every worker calls `engine.batch.process` and
persists what it computed the local engine's way (artifacts first, then the part lines), each into
a part file of its own (`part-<invocation>-<writer>.jsonl`: one writer per file), so a part line is
finished work whichever process dies. Only kept records travel on to the next group; images travel
through the run directory, which must be on a filesystem every node sees.

When the pipeline has drained, the driver takes the run through the local engine in decide-only
mode: records.jsonl, side tables and the funnel come from the stored parts by the very code the
local engine uses, so a Ray-made run is indistinguishable from a local one. A killed actor's batch
is retried by Ray (its recomputed lines repeat finished work; `read_parts` keeps one per input).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from imgdiff.engine.local import Outcome, run_local
from imgdiff.engine.plan import Bounds, Plan
from imgdiff.engine.shard import Shard
from imgdiff.engine.spans import ROW_SCHEMA, Span, Work, computed_counts, pending_rows
from imgdiff.engine.steps import Mode
from imgdiff.errors import UsageError
from imgdiff.sources.base import Source
from imgdiff.store import RunStore

log = logging.getLogger("imgdiff")


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # None: start (or join) a local Ray instance
    workers: int = 1  # actors per model group, tasks in flight per weight-free group
    gpus_per_worker: float | None = None  # None: 1 for a group with a GPU model, else 0


def run_ray(
    plan: Plan,
    source: Source,
    store: RunStore,
    *,
    limit: int | None = None,
    shard: Shard | None = None,
    progress: bool = True,
    invocation: int = 1,
    options: RayOptions = RayOptions(),
) -> Outcome:
    rows = list(pending_rows(plan, source, store, limit, shard))
    log.info("ray: %d record(s) to compute", len(rows))
    if rows:
        _compute(plan, source, store, rows, invocation, options)
    outcome = run_local(
        plan, source, store, limit=limit, shard=shard, mode=Mode.DECIDE_ONLY, progress=progress
    )
    computed_counts(outcome, store, invocation)
    return outcome


def _compute(
    plan: Plan,
    source: Source,
    store: RunStore,
    rows: list[dict[str, Any]],
    invocation: int,
    options: RayOptions,
) -> None:
    import ray

    if not ray.is_initialized():
        ray.init(address=options.address, include_dashboard=False, log_to_driver=False)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    spans = plan.spans()
    work = Work.of(plan, source, store, invocation)
    dataset = ray.data.from_arrow(_blocks(rows))
    cpus = _cpus_per_actor(ray.cluster_resources().get("CPU", 1.0), spans, options.workers)
    for bounds in spans:
        gpus = _gpus(plan, bounds, options)
        # Whole blocks (one source batch each) where Ray allows it, so that blocks spread over the
        # workers; it wants a batch size with GPUs (a Span still takes each source batch alone).
        size = plan.recipe.run.batch_size if gpus else None
        if bounds.models:
            dataset = dataset.map_batches(
                GroupWorker,
                fn_constructor_kwargs={"work": work, "bounds": bounds},
                batch_size=size,
                batch_format="pyarrow",
                compute=ray.data.ActorPoolStrategy(size=options.workers),
                num_cpus=cpus,
                num_gpus=gpus,
            )  # Ray Data restarts a killed actor and retries its batch
        else:
            dataset = dataset.map_batches(
                _weight_free,
                fn_kwargs={"work": work, "bounds": bounds},
                batch_size=size,
                batch_format="pyarrow",
                compute=ray.data.TaskPoolStrategy(size=options.workers),
                num_cpus=1,
            )
    left = dataset.count()  # drains the pipeline: every group has persisted its work
    log.info("ray: pipeline drained, %d record(s) kept through the last step", left)


def _blocks(rows: list[dict[str, Any]]) -> list[pa.Table]:
    """The rows as one Arrow table per source batch: Ray Data's blocks."""
    batches: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        batches.setdefault(row["batch"], []).append(row)
    return [pa.Table.from_pylist(batch, schema=ROW_SCHEMA) for batch in batches.values()]


def _cpus_per_actor(cluster_cpus: float, spans: list[Bounds], workers: int) -> float:
    """A streaming pipeline needs every group's actors alive at once, with a CPU left for the
    tasks: one CPU per actor where the cluster has them, a share of what it has where it has not."""
    actors = workers * sum(1 for bounds in spans if bounds.models)
    return 1.0 if not actors else max(0.05, min(1.0, (cluster_cpus - 1) / actors))


def _gpus(plan: Plan, bounds: Bounds, options: RayOptions) -> float:
    if not bounds.models:
        return 0.0
    if options.gpus_per_worker is not None:
        return options.gpus_per_worker
    devices = {plan.recipe.models[name].device for name in bounds.models}
    return 1.0 if any(d.startswith("cuda") for d in devices) else 0.0


class GroupWorker:
    """One actor of a group's pool: its steps (and so its models) are set up once per actor."""

    def __init__(self, work: Work, bounds: Bounds) -> None:
        self.span = Span(work, bounds)

    def __call__(self, batch: pa.Table) -> pa.Table:
        return self.span(batch)


def _weight_free(batch: pa.Table, work: Work, bounds: Bounds) -> pa.Table:
    """A group without models (or the source step) as a plain task: cheap to build per batch."""
    span = Span(work, bounds)
    try:
        return span(batch)
    finally:
        span.close()


def check_available() -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        raise UsageError("--engine ray needs the ray extra: pip install 'imgdiff[ray]'") from None


__all__ = ["GroupWorker", "RayOptions", "check_available", "run_ray"]
