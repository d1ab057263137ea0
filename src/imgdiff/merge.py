"""`imgdiff merge DIR`: join the shards of DIR/shards/I-of-N/ into DIR, as one run.

Every shard must be present and complete, and all must come from the same source, seed and recipe.
Images, side arrays and stage parts are linked (or copied) into DIR, so the merged directory is a
whole run that the same recipe resumes without recomputing anything; records.jsonl is rewritten in
canonical order, which makes it byte-identical to an unsharded run of the same recipe.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from imgdiff.errors import UsageError
from imgdiff.record import Record
from imgdiff.runner import load_records
from imgdiff.store import RunStore

SAME = ("source_fingerprint", "seed", "recipe", "limit")


def merge(out: str | Path) -> dict[str, Any]:
    root = Path(out)
    shards = _shard_dirs(root)
    metas = [RunStore(d).read_meta() or {} for d in shards]
    for key in SAME:
        if any(m.get(key) != metas[0].get(key) for m in metas):
            raise UsageError(f"merge {root}: the shards differ in {key}; rerun them with one command line")
    stats = []
    for d in shards:
        path = d / "stats.json"
        shard_stats = json.loads(path.read_text()) if path.is_file() else {}
        if not shard_stats.get("complete"):
            raise UsageError(f"merge {root}: shard {d.name} is not finished; rerun its command first")
        stats.append(shard_stats)
    store = RunStore(root)
    existing = store.read_meta()
    if existing and (existing.get("source_fingerprint"), existing.get("seed")) != (
        metas[0].get("source_fingerprint"),
        metas[0].get("seed"),
    ):
        raise UsageError(f"merge {root}: {root}/run.json is another run; merge into a new directory")
    with store.locked():
        records: list[Record] = []
        for d in shards:
            _link_tree(d / "images", root / "images")
            _link_tree(d / "aux", root / "aux")
            _link_parts(d, root)
            records += load_records(d)
        store.write_records(records)
        _merge_tables(shards, store, records)
        merged = _sum_stats(stats)
        store.write_stats(merged)
        store.write_meta({**metas[0], "shard": None, "merged_from": [d.name for d in shards]})
    formats = metas[0].get("recipe", {}).get("export") or []
    if formats:
        from imgdiff.export import export_run

        merged["exports"] = export_run(root, list(formats))
    return merged


def _shard_dirs(root: Path) -> list[Path]:
    found = sorted((root / "shards").glob("*-of-*")) if (root / "shards").is_dir() else []
    if not found:
        raise UsageError(f"merge {root}: no shards in {root / 'shards'} (run with --shard I/N first)")
    counts = {int(d.name.split("-of-")[1]) for d in found}
    if len(counts) != 1:
        raise UsageError(f"merge {root}: shards of different counts {sorted(counts)}; keep one set")
    (n,) = counts
    missing = [i for i in range(n) if not (root / "shards" / f"{i}-of-{n}" / "run.json").is_file()]
    if missing:
        raise UsageError(f"merge {root}: shard(s) {', '.join(f'{i}/{n}' for i in missing)} missing")
    return [root / "shards" / f"{i}-of-{n}" for i in range(n)]


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


def _link_parts(shard: Path, root: Path) -> None:
    """Parts keep their content; their names say which shard they came from."""
    for path in (shard / "stages").glob("*/part-*.jsonl"):
        target = root / "stages" / path.parent.name / f"part-{shard.name}-{path.name.removeprefix('part-')}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def _merge_tables(shards: list[Path], store: RunStore, records: list[Record]) -> None:
    import pyarrow.parquet as pq

    order = {r.id: r.sort_key() for r in records}
    names = {p.relative_to(s / "stages") for s in shards for p in (s / "stages").glob("*/*.parquet")}
    for name in sorted(names):
        rows = [
            row
            for s in shards
            if (s / "stages" / name).is_file()
            for row in pq.read_table(s / "stages" / name).to_pylist()
        ]
        rows.sort(
            key=lambda row: order.get(row.get("id"), (0, []))
        )  # stable: keeps rows of a record in order
        store.write_table(name.parent.name, name.stem, rows)


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
