"""`run:DIR` as a benchmark: the kept pairs of an imgdiff run, asked to locate or describe the
difference. Read through the run store (records, and pixels by the record's own paths), so any
run's layout works; the scorers later compare the answers with the same records' truth and edits.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from imgdiff.errors import UsageError
from imgdiff.eval.benchmarks import PROMPTS, TASKS, Benchmark, Item
from imgdiff.record import Record
from imgdiff.store import RunStore


def run_benchmark(out: Path, task: str, split: str | None = None, export: Path | None = None) -> Benchmark:
    """The run's kept pairs; with `split`, only those in that split of the run's export (`export`:
    the export folder, when the run has several that split differently)."""
    if task not in TASKS:
        raise UsageError(f"unknown task '{task}' for run:DIR (valid: {', '.join(TASKS)})")
    store = RunStore(out)
    meta = store.read_meta()
    if meta is None:
        raise UsageError(f"'{out}' is not an imgdiff run directory (no run.json)")
    kept, folder = kept_records(out, split, export)
    if not kept:
        where = f" in split '{split}' of its export" if split else ""
        raise UsageError(f"'{out}' has no kept pairs to ask about{where}")
    items = [Item(r.id, PROMPTS[task], _loader(store, r), {"kind": r.kind}) for r in kept]
    source = {
        "benchmark": "run",
        "data": str(out.resolve()),
        "source_fingerprint": meta.get("source_fingerprint"),
        "seed": meta.get("seed"),
    }
    if folder is not None:  # the scorers read these back, to score the same pairs
        source["export_split"] = split
        source["export"] = str(folder.resolve())
    return Benchmark("run", task, source, PROMPTS[task], items)


def kept_records(
    out: Path, split: str | None = None, export: Path | None = None
) -> tuple[list[Record], Path | None]:
    """The run's kept records, or those with a sample in `split` of its export (and that export's
    folder)."""
    from imgdiff.store import load_finished_records as load_records

    kept = [r for r in load_records(out) if r.status == "kept"]
    if split is None:
        return kept, None
    from imgdiff.export.held_out import split_pairs

    ids, folder = split_pairs(out, split, export)
    return [r for r in kept if r.id in ids], folder


def _loader(store: RunStore, record: Record) -> Callable[[], list[np.ndarray]]:
    def load() -> list[np.ndarray]:
        try:
            return [np.asarray(store.images.load(record, name)) for name in ("a", "b")]
        except (OSError, KeyError, ValueError) as exc:
            raise UsageError(f"record {record.id}: cannot read its images ({exc})") from None

    return load
