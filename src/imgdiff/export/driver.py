"""The export driver: finished runs into training-data formats (`export:` in a recipe, `imgdiff export`).

`EXPORTERS` maps a format name to its exporter class; the recipe loader accepts exactly these names.
`export_run` reads the run's samples twice, one record at a time, so memory stays flat however large
the run: a first pass plans where each sample goes (options `where`, `dedup`, `max_per_object` and
`split`; export/plan.py), a second streams the kept samples, split by split, once through every
format asked for: each sample's picture is rendered and encoded once (in parallel workers,
export/pictures.py) and handed to every format's writer. Each format fills its own folder,
DIR/export/<format>/ by default, built beside its final place and renamed in, so a crash leaves the
previous export whole; a marker inside it (the records' hash, the exporter's version and the
options) lets an unchanged export be skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from imgdiff.errors import UsageError, did_you_mean
from imgdiff.export.base import ExportContext, Exporter, run_facts
from imgdiff.export.files import FileWriter
from imgdiff.export.internvl import InternVLExporter
from imgdiff.export.llava import LlavaExporter
from imgdiff.export.options import ExportOptions, build_options
from imgdiff.export.parquet import ParquetExporter
from imgdiff.export.samples import Sample
from imgdiff.export.sharegpt import ShareGPTExporter
from imgdiff.export.webdataset import WebDatasetExporter
from imgdiff.record import Record
from imgdiff.store import RunStore

EXPORTERS: dict[str, type[Exporter]] = {
    "llava": LlavaExporter,
    "sharegpt": ShareGPTExporter,
    "internvl": InternVLExporter,
    "parquet": ParquetExporter,
    "webdataset": WebDatasetExporter,
}

MARKER = ".imgdiff-export.json"  # {"fingerprint": ..., "summary": ..., "options": ...}, written last


def export_run(
    run_dir: Path,
    formats: list[str],
    to: Path | None = None,
    options: ExportOptions | dict[str, Any] | None = None,
    extra_samples: Iterable[Sample] = (),
) -> dict[str, dict[str, Any]]:
    """Export a finished run into `to/<format>/` (default DIR/export/); format -> summary.
    `extra_samples` (samples of types the run's records do not make by themselves, such as
    multiple-choice questions) join the run's own, after them in canonical order."""
    for fmt in formats:
        if fmt not in EXPORTERS:
            raise UsageError(f"export: unknown format '{fmt}'{did_you_mean(fmt, EXPORTERS)}")
    if not isinstance(options, ExportOptions):
        options = build_options(options or {}, "export")
    run_dir = Path(run_dir)
    facts = run_facts(run_dir)
    if not facts["complete"]:
        raise UsageError(
            f"'{run_dir}' is not a finished run (work is pending or it was stopped); "
            "run the same `imgdiff run` command to finish it, then export"
        )
    extra = list(extra_samples)
    store = RunStore(run_dir)
    content: dict[str, Any] = {
        "records": _file_sha256(store.records_path),
        "run": {k: v for k, v in facts.items() if k != "complete"},  # what the card shows
    }
    if options.fingerprint_fields() != ExportOptions().fingerprint_fields():
        content["options"] = options.fingerprint_fields()  # absent for defaults: older markers stay valid
    if extra:
        content["extra"] = hashlib.sha256(json.dumps([s.fields() for s in extra]).encode()).hexdigest()
    summaries, todo = {}, {}
    for fmt in dict.fromkeys(formats):
        target = (Path(to) if to is not None else store.export_dir) / fmt
        key = {"format": fmt, "version": EXPORTERS[fmt].version, **content}
        fingerprint = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
        _recover(target)
        stored = _stored(target)
        if stored.get("fingerprint") == fingerprint:
            summaries[fmt] = stored["summary"]
        else:
            todo[fmt] = (target, fingerprint)
    if todo:
        summaries.update(_build(store, extra, facts, options, todo))
    return {fmt: summaries[fmt] for fmt in dict.fromkeys(formats)}


def _build(
    store: RunStore,
    extra: list[Sample],
    facts: dict[str, Any],
    options: ExportOptions,
    todo: dict[str, tuple[Path, str]],
) -> dict[str, dict[str, Any]]:
    """Plan the samples, stream them split by split through every format's writer in a temporary
    sibling folder, then swap each folder in with renames; on failure, drop them all."""
    from imgdiff.export import pictures
    from imgdiff.export.plan import plan
    from imgdiff.export.stream import run_samples

    planned = plan(run_samples(store, extra), options, pair_code(store.root))
    context = ExportContext(
        run_dir=store.root,
        facts=facts,
        options=options,
        extension=pictures.extension(options),
        splits=planned.splits,
        pairs=planned.pairs,
        dropped=planned.dropped,
        columns=planned.columns,
        types=planned.types,
    )
    options_made = options.fingerprint_fields()  # the marker keeps them: export/held_out.py reads them
    folders = {}
    # as many writers as encoders, so a many-core export does not wait on the disk one file at a time
    files = context.files = FileWriter(threads=max(4, options.workers), pending=max(8, 2 * options.workers))
    try:
        writers = {}
        for fmt, (target, _) in todo.items():
            tmp, _old = _siblings(target)
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            folders[fmt] = tmp
            writers[fmt] = EXPORTERS[fmt](tmp, context)
        for split in planned.splits:  # split by split, canonical order within
            chosen = planned.of_split(run_samples(store, extra), split)
            for sample, picture in pictures.encoded(chosen, store.root, options):
                for writer in writers.values():
                    writer.add(sample, split, picture)
        summaries = {}
        for fmt, writer in writers.items():
            summaries[fmt] = writer.finish()
            marker = {"fingerprint": todo[fmt][1], "summary": summaries[fmt], "options": options_made}
            (folders[fmt] / MARKER).write_text(json.dumps(marker, indent=2))
        files.close()
        _sync(list(folders.values()), options.workers, flushed=files.folders)
    except BaseException:
        files.close_quietly()
        for tmp in folders.values():
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    for fmt, (target, _) in todo.items():
        _swap_in(folders[fmt], target)
    return summaries


def pair_code(run_dir: Path) -> Callable[[Record], int]:
    """Record -> the perceptual code of its pair (for --dedup; decoding the pair dominates)."""
    from imgdiff.export.select import perceptual_code
    from imgdiff.store import ImageLoader

    loader = ImageLoader(run_dir)
    return lambda record: perceptual_code(loader.load(record, "a"), loader.load(record, "b"))


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise UsageError(f"cannot read the run's records ({exc.strerror}): {path}") from None
    return digest.hexdigest()


def _swap_in(tmp: Path, target: Path) -> None:
    _tmp, old = _siblings(target)
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)  # between the two renames, `_recover` can put `old` back
    shutil.rmtree(old, ignore_errors=True)


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


def _sync(folders: Iterable[Path], workers: int, flushed: set[Path]) -> None:
    """Flush every file to disk before the rename makes a folder visible (files in the `flushed`
    folders were flushed as they were written); in parallel, as a disk that waits on one flush can
    take others meanwhile."""
    paths = [
        path
        for folder in folders
        for path in folder.rglob("*")
        if path.is_file() and path.parent not in flushed
    ]
    with ThreadPoolExecutor(max_workers=max(4, 2 * workers)) as pool:
        list(pool.map(_fsync, paths))


def _fsync(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())
