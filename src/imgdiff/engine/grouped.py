"""The local engine, models per group: for recipes whose models do not all fit the device at once.

It works chunk by chunk (whole source batches, about `chunk_size` records with work left): each of
the plan's groups builds its steps (and so loads its models), takes the chunk through them (a
`Span` takes one source batch at a time: the streaming mode's batches, since a model's floats
depend on what else is in its batch), and is released (its stages and models dropped, the CUDA
cache emptied) before the next group loads. The pieces are the Ray engine's (`engine.spans`), run
in this process: the same pending rows (finished inputs skipped before anything runs), the same
`Span` that calls the batch function and persists artifacts then part lines, and the same
decide-only finishing pass through the local engine, so its outputs are the streaming mode's.
`engine.choice` decides when it runs; it returns the peak GPU memory of each group.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from imgdiff.engine.local import Outcome, run_local
from imgdiff.engine.plan import Plan
from imgdiff.engine.shard import Shard
from imgdiff.engine.spans import ROW_SCHEMA, Span, Work, computed_counts, pending_rows
from imgdiff.engine.steps import Mode
from imgdiff.sources.base import Source
from imgdiff.store import RunStore

log = logging.getLogger("imgdiff")


def run_grouped(
    plan: Plan,
    source: Source,
    store: RunStore,
    *,
    limit: int | None = None,
    shard: Shard | None = None,
    progress: bool = True,
    invocation: int = 1,
    chunk_size: int = 256,
) -> tuple[Outcome, dict[str, float]]:
    """(the outcome, peak GPU GB per group) of a group-wise run."""
    rows = list(pending_rows(plan, source, store, limit, shard))
    log.info("models per group: %d record(s) to compute in chunks of %d", len(rows), chunk_size)
    work = Work.of(plan, source, store, invocation)
    peaks: dict[str, float] = {}
    for chunk in _chunks(rows, chunk_size):
        table = pa.Table.from_pylist(chunk, schema=ROW_SCHEMA)
        for bounds in plan.spans():
            _reset_peak()
            if table.num_rows:
                span = Span(work, bounds)
                table = span(table)
                span.close()
                del span  # drops the group's stages and their models
            peaks[bounds.name] = max(peaks.get(bounds.name, 0.0), _release())
    for name, peak in peaks.items():
        log.info("models per group: %s peak GPU memory %.2f GB", name, peak)
    outcome = run_local(
        plan, source, store, limit=limit, shard=shard, mode=Mode.DECIDE_ONLY, progress=progress
    )
    computed_counts(outcome, store, invocation)
    return outcome, peaks


def _chunks(rows: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    """Whole source batches, about `size` rows at a time (rows come batch by batch)."""
    chunk: list[dict[str, Any]] = []
    for row in rows:
        if len(chunk) >= size and row["batch"] != chunk[-1]["batch"]:
            yield chunk
            chunk = []
        chunk.append(row)
    if chunk:
        yield chunk


def _reset_peak() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def _release() -> float:
    """Free what the dropped group held; its peak GPU memory in GB (0 without a GPU)."""
    import torch

    gc.collect()
    if not torch.cuda.is_available():
        return 0.0
    peak = torch.cuda.max_memory_allocated() / 1024**3
    torch.cuda.empty_cache()
    return round(peak, 2)
