"""`imgdiff merge DIR`: join the shards of DIR/shards/I-of-N/ into DIR, as one run.

Every shard must be present and complete, and all must come from the same source, seed and recipe.
Images, side arrays and stage parts are linked (or copied) into DIR, so the merged directory is a
whole run that the same recipe resumes without recomputing anything; records.jsonl is rewritten in
canonical order, which makes it byte-identical to an unsharded run of the same recipe.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from imgdiff.errors import UsageError
from imgdiff.export import export_run
from imgdiff.record import Record
from imgdiff.store import RunStore

SAME = ("source_fingerprint", "seed", "recipe", "limit")


def merge(out: str | Path) -> dict[str, Any]:
    """Join the finished shards of `out` into `out`; returns the merged funnel."""
    store = RunStore(out)
    shards = _shards(store)
    metas = [shard.read_meta() or {} for shard in shards]
    for key in SAME:
        if any(m.get(key) != metas[0].get(key) for m in metas):
            raise UsageError(
                f"merge {store.root}: the shards differ in {key}; rerun them with one command line"
            )
    stats = [shard.read_stats() or {} for shard in shards]
    for shard, shard_stats in zip(shards, stats, strict=True):
        if not shard_stats.get("complete"):
            raise UsageError(
                f"merge {store.root}: shard {shard.root.name} is not finished; rerun its command first"
            )
    existing = store.read_meta()
    if existing and (existing.get("source_fingerprint"), existing.get("seed")) != (
        metas[0].get("source_fingerprint"),
        metas[0].get("seed"),
    ):
        raise UsageError(f"merge {store.root}: {store.run_json} is another run; merge into a new directory")
    with store.locked():
        _join(shards, store)
        merged = _sum_stats(stats)
        store.write_stats(merged)
        store.write_meta({**metas[0], "shard": None, "merged_from": [s.root.name for s in shards]})
    formats = metas[0].get("recipe", {}).get("export") or []
    if formats:
        merged["exports"] = export_run(store.root, list(formats))
    return merged


def _shards(store: RunStore) -> list[RunStore]:
    counts = store.shard_counts()
    if not counts:
        raise UsageError(f"merge {store.root}: no shards in {store.shards_dir} (run with --shard I/N first)")
    if len(counts) != 1:
        raise UsageError(f"merge {store.root}: shards of different counts {sorted(counts)}; keep one set")
    (n,) = counts
    shards = [store.shard(i, n) for i in range(n)]
    missing = [i for i, shard in enumerate(shards) if not shard.run_json.is_file()]
    if missing:
        raise UsageError(f"merge {store.root}: shard(s) {', '.join(f'{i}/{n}' for i in missing)} missing")
    return shards


def _join(shards: list[RunStore], store: RunStore) -> None:
    """Link every shard's images, side arrays and parts into `store`; write records and tables."""
    records: list[Record] = []
    for shard in shards:
        for src, dst in zip(shard.artifact_dirs, store.artifact_dirs, strict=True):
            _link_tree(src, dst)
        for part in shard.part_paths():  # parts keep their content; their names say which shard
            target = store.merged_part_path(part, shard)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(part, target)
        records += shard.read_records()
    store.write_records(records)
    _merge_tables(shards, store, records)


def _link_tree(src: Path, dst: Path) -> None:
    if not src.is_dir():
        return
    for path in src.rglob("*"):
        if path.is_file():
            target = dst / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                target.unlink()
            try:
                os.link(path, target)  # no copy where the filesystem allows
            except OSError:
                shutil.copy2(path, target)


def _merge_tables(shards: list[RunStore], store: RunStore, records: list[Record]) -> None:
    import pyarrow.parquet as pq

    order = {r.id: r.sort_key() for r in records}
    for stage, table in sorted({name for s in shards for name in s.tables()}):
        rows = [
            row
            for s in shards
            if s.table_path(stage, table).is_file()
            for row in pq.read_table(s.table_path(stage, table)).to_pylist()
        ]
        rows.sort(key=lambda row: order.get(row.get("id"), (0, [])))  # stable: a record's rows stay in order
        store.write_table(stage, table, rows)


def _sum_stats(stats: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {k: sum(s[k] for s in stats) for k in ("records", "kept", "rejected", "pending")}
    merged["complete"] = True
    merged["seconds"] = round(sum(s["seconds"] for s in stats), 3)
    steps = []
    for rows in zip(*(s["stages"] for s in stats), strict=True):
        step = {k: sum(r[k] for r in rows) for k in ("in", "out", "kept", "reused", "computed", "pending")}
        rejected: Counter[str] = Counter()
        for r in rows:
            rejected.update(r["rejected"])
        steps.append(
            {
                "stage": rows[0]["stage"],
                **step,
                "rejected": dict(sorted(rejected.items())),
                "seconds": round(sum(r["seconds"] for r in rows), 3),
            }
        )
    merged["stages"] = steps
    merged["pending_by_stage"] = {}
    merged["merged_from"] = len(stats)
    return merged
