"""Exporters: finished runs into training-data formats (`export: [llava, ...]` in a recipe).

`EXPORTERS` maps a format name to its exporter class; the recipe loader accepts exactly these names.
`export_run` writes each format into its own folder, DIR/export/<format>/ by default. A folder is
built beside its final place and renamed in, so a crash leaves the previous export whole; a marker
inside it (the records' hash and the exporter's version) lets an unchanged export be skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from imgdiff.errors import UsageError, did_you_mean
from imgdiff.export.base import Exporter, run_facts
from imgdiff.export.llava import LlavaExporter
from imgdiff.record import Record
from imgdiff.store import RunStore

EXPORTERS: dict[str, type[Exporter]] = {"llava": LlavaExporter}

MARKER = ".imgdiff-export.json"  # {"fingerprint": ..., "summary": ...}, written last


def export_run(run_dir: Path, formats: list[str], to: Path | None = None) -> dict[str, dict[str, Any]]:
    """Export a finished run into `to/<format>/` (default DIR/export/); format -> summary."""
    for fmt in formats:
        if fmt not in EXPORTERS:
            raise UsageError(f"export: unknown format '{fmt}'{did_you_mean(fmt, EXPORTERS)}")
    run_dir = Path(run_dir)
    store = RunStore(run_dir)
    records = store.read_records()
    content = {
        "records": hashlib.sha256(store.records_path.read_bytes()).hexdigest(),
        "run": run_facts(run_dir),  # what the card shows
    }
    summaries = {}
    for fmt in dict.fromkeys(formats):
        exporter = EXPORTERS[fmt]()
        target = (Path(to) if to is not None else store.export_dir) / fmt
        key = {"format": fmt, "version": exporter.version, **content}
        fingerprint = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
        _recover(target)
        stored = _stored(target)
        if stored.get("fingerprint") == fingerprint:
            summaries[fmt] = stored["summary"]
            continue
        summaries[fmt] = _build(exporter, run_dir, records, target, fingerprint)
    return summaries


def _build(
    exporter: Exporter, run_dir: Path, records: list[Record], target: Path, fingerprint: str
) -> dict[str, Any]:
    """Export into a temporary sibling folder, then swap it in with renames; on failure, drop it."""
    tmp, old = _siblings(target)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        summary = exporter.export(run_dir, records, tmp)
        (tmp / MARKER).write_text(json.dumps({"fingerprint": fingerprint, "summary": summary}, indent=2))
        _sync(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)  # between the two renames, `_recover` can put `old` back
    shutil.rmtree(old, ignore_errors=True)
    return summary


def _recover(target: Path) -> None:
    """Undo what a crash left: a half-built folder goes, a previous export swapped out comes back."""
    tmp, old = _siblings(target)
    shutil.rmtree(tmp, ignore_errors=True)
    if old.exists():
        if target.exists():
            shutil.rmtree(old)
        else:
            os.replace(old, target)


def _stored(target: Path) -> dict[str, Any]:
    try:
        return json.loads((target / MARKER).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def _siblings(target: Path) -> tuple[Path, Path]:
    return target.with_name(f".{target.name}.tmp"), target.with_name(f".{target.name}.old")


def _sync(folder: Path) -> None:
    """Flush every file to disk before the rename makes the folder visible."""
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
