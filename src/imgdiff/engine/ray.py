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

import json
import logging
import pickle
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from imgdiff.engine.batch import process
from imgdiff.engine.local import Outcome, _batches, make_steps, run_local
from imgdiff.engine.plan import Plan
from imgdiff.engine.shard import Shard
from imgdiff.engine.steps import Mode, Step
from imgdiff.errors import UsageError
from imgdiff.record import Record
from imgdiff.sources.base import Source
from imgdiff.store import PartWriter, RunStore

log = logging.getLogger("imgdiff")

# batch: the number of the source batch a record came from (the models-per-group mode keeps the
# streaming mode's batches with it: a model's floats depend on what else is in its batch).
ROW_SCHEMA = pa.schema(
    [("start", pa.int64()), ("record", pa.string()), ("raw", pa.binary()), ("batch", pa.int64())]
)


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


def computed_counts(outcome: Outcome, store: RunStore, invocation: int) -> None:
    """The decide-only pass reused what the workers computed now: count that as computed."""
    for counts in outcome.counts:
        computed = len(_lines_of(store, counts.name, invocation))
        counts.computed, counts.reused = computed, counts.reused - computed


def pending_rows(
    plan: Plan, source: Source, store: RunStore, limit: int | None, shard: Shard | None
) -> Iterator[dict[str, Any]]:
    """One row per record with work left: the step it starts at, the record, its raw item."""
    steps = make_steps(plan, source, store)
    stored = {s.name: store.read_parts(s.name) for s in steps}
    for batch, (records, raws) in enumerate(_batches(plan, source, limit, shard)):
        for index, step in enumerate(steps):
            result = process(step, records, stored[step.name], Mode.DECIDE_ONLY, store.place, raws)
            for record in result.pending:
                raw = pickle.dumps(raws[record.id]) if index == 0 else None
                yield {"start": index, "record": json.dumps(record.to_dict()), "raw": raw, "batch": batch}
            records = [r for r in result.outputs if r.kept]
        store.images.forget()


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
    spans = group_spans(plan)
    work = dict(plan=plan, source=source, root=str(store.root), fmt=store.image_format, invocation=invocation)
    dataset = ray.data.from_arrow(pa.Table.from_pylist(rows, schema=ROW_SCHEMA))
    cpus = _cpus_per_actor(ray.cluster_resources().get("CPU", 1.0), spans, options.workers)
    for first, last, models in spans:
        fn_args = dict(work, first=first, last=last)
        size = plan.recipe.run.batch_size
        if models:
            gpus = _gpus(plan, models, options)
            dataset = dataset.map_batches(
                GroupWorker,
                fn_constructor_kwargs=fn_args,
                batch_size=size,
                batch_format="pyarrow",
                compute=ray.data.ActorPoolStrategy(size=options.workers),
                num_cpus=cpus,
                num_gpus=gpus,
            )  # Ray Data restarts a killed actor and retries its batch
        else:
            dataset = dataset.map_batches(
                _weight_free,
                fn_kwargs=fn_args,
                batch_size=size,
                batch_format="pyarrow",
                compute=ray.data.TaskPoolStrategy(size=options.workers),
                num_cpus=1,
            )
    left = dataset.count()  # drains the pipeline: every group has persisted its work
    log.info("ray: pipeline drained, %d record(s) kept through the last step", left)


def group_spans(plan: Plan) -> list[tuple[int, int, set[str]]]:
    """(first step index, last step index, model entry names) per unit of work: the source step
    (step 0), then each of the plan's groups."""
    spans = [(0, 0, set[str]())]
    for group in plan.groups():
        first = spans[-1][1] + 1
        models = {name for spec in group for name in spec.models().values()}
        spans.append((first, first + len(group) - 1, models))
    return spans


def _cpus_per_actor(cluster_cpus: float, spans: list[tuple[int, int, set[str]]], workers: int) -> float:
    """A streaming pipeline needs every group's actors alive at once, with a CPU left for the
    tasks: one CPU per actor where the cluster has them, a share of what it has where it has not."""
    actors = workers * sum(1 for _, _, models in spans if models)
    return 1.0 if not actors else max(0.05, min(1.0, (cluster_cpus - 1) / actors))


def _gpus(plan: Plan, models: set[str], options: RayOptions) -> float:
    if options.gpus_per_worker is not None:
        return options.gpus_per_worker
    devices = {plan.recipe.models[name].device for name in models}
    return 1.0 if any(d.startswith("cuda") for d in devices) else 0.0


class Span:
    """Steps `first..last` of the run, built in a worker; persists into its own part files."""

    def __init__(
        self, plan: Plan, source: Source, root: str, fmt: str, invocation: int, first: int, last: int
    ) -> None:
        self.store = RunStore(root, fmt)
        self.first, self.last = first, last
        self.steps: list[Step] = make_steps(plan, source, self.store)[first : last + 1]
        writer = uuid.uuid4().hex[:12]
        self.writers = {
            s.name: PartWriter(self.store.stage_dir(s.name) / f"part-{invocation:05d}-{writer}.jsonl")
            for s in self.steps
        }

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = batch.to_pylist()
        later = [r for r in rows if r["start"] > self.last]  # rows for later groups pass by
        entering = sorted((r for r in rows if r["start"] <= self.last), key=lambda r: r["start"])
        raws = {}
        live: list[Record] = []
        for index, step in enumerate(self.steps, self.first):
            for row in (r for r in entering if r["start"] == index):
                record = Record.from_dict(json.loads(row["record"]))
                live.append(record)
                if row["raw"] is not None:
                    raws[record.id] = pickle.loads(row["raw"])
            if not live:
                continue
            result = process(step, live, {}, Mode.COMPUTE, self.store.place, raws)
            for record in result.computed:
                self.store.write_artifacts(record)
                self.store.images.keep(record)
            self.writers[step.name].append(result.lines)
            live = [r for r in result.outputs if r.kept]
        self.store.images.forget()
        batch = rows[0]["batch"] if rows else 0  # the models-per-group mode passes one batch at a time
        out = later + [
            {"start": self.last + 1, "record": json.dumps(r.to_dict()), "raw": None, "batch": batch}
            for r in live
        ]
        return pa.Table.from_pylist(out, schema=ROW_SCHEMA)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


class GroupWorker:
    """One actor of a group's pool: its steps (and so its models) are set up once per actor."""

    def __init__(self, **work: Any) -> None:
        self.span = Span(**work)

    def __call__(self, batch: pa.Table) -> pa.Table:
        return self.span(batch)


def _weight_free(batch: pa.Table, **work: Any) -> pa.Table:
    """A group without models (or the source step) as a plain task: cheap to build per batch."""
    span = Span(**work)
    try:
        return span(batch)
    finally:
        span.close()


def _lines_of(store: RunStore, stage: str, invocation: int) -> set[str]:
    """The input ids this invocation's workers wrote part lines for (one stage)."""
    ids: set[str] = set()
    for path in store.stage_dir(stage).glob(f"part-{invocation:05d}-*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                ids.add(json.loads(line)["in"])
            except (json.JSONDecodeError, KeyError):
                continue  # a line cut short by a kill
    return ids


def check_available() -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        raise UsageError("--engine ray needs the ray extra: pip install 'imgdiff[ray]'") from None


__all__ = ["GroupWorker", "RayOptions", "check_available", "run_ray"]
