"""The run directory: layout, atomic writes, images, side arrays, stage parts, records, stats.

    DIR/run.json                     what the run was started with (recipe, seed, fingerprints)
    DIR/stages/<stage>/part-N.jsonl  append-only stage outputs keyed by input id (truth for resume)
    DIR/records.jsonl                every finished record in canonical order
    DIR/stats.json                   the funnel
    DIR/stages/<stage>/<table>.parquet  a stage's side table
    DIR/images/<id[:2]>/<id>_a.png   lossless images; DIR/aux/<id[:2]>/ side arrays
    DIR/logs/run-N.log               one log per invocation; DIR/.lock; DIR/.tmp/ (swept at start)
    DIR/shards/I-of-N/               a sharded run's slices (each a run directory); `imgdiff merge`

Every file but the parts is written to a temporary name and renamed into place. A part line is
written (one write, flushed and synced) only after the artifacts it names are in place, so a line
that exists is a finished piece of work, and a line cut short by a kill is ignored on reading.
"""

from __future__ import annotations

import errno
import fcntl
import io
import json
import logging
import os
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from imgdiff.errors import UsageError
from imgdiff.record import Record

log = logging.getLogger("imgdiff")
IMAGE_NAMES = ("a", "b")
_LOCK = ".lock"
_STRAY_TMP = ".*.tmp-*"  # temporaries that earlier versions wrote beside their file
_DERIVED = ("report", "audit")  # other folders made from a run's records; --fresh removes them
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so that .npz bytes do not depend on the clock


def atomic_write(path: Path, data: bytes, tmp_dir: Path | None = None) -> None:
    """Write to a temporary file, sync, rename into place: readers see all or nothing.

    With `tmp_dir` (a run's `.tmp/`, swept at each start) a write cut short by a kill leaves no
    stray file among the outputs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = tmp_dir if tmp_dir is not None else path.parent
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{path.name}.tmp-{os.getpid()}"
    with _naming(path):
        try:
            with tmp.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError:
            tmp.unlink(missing_ok=True)  # a full disk keeps no half file
            raise
        os.replace(tmp, path)


@contextmanager
def _naming(path: Path) -> Iterator[None]:
    """An OSError without a file name (a write refused: disk full, file-size limit) names `path`."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise


def dumps(obj: Any) -> str:
    """Canonical JSON for records and parts: fixed separators, no ASCII escaping."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class ImageLoader:
    """How stages read pixels: a record's own artifacts, then the pixels of the batch in hand
    (kept after the engine wrote them, so later steps need not decode them), then the run's files."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._batch: dict[tuple[str, str], Any] = {}

    def keep(self, record: Record) -> None:
        """Move the record's written artifacts into the batch cache (the engine, after writing)."""
        for name, value in record.artifacts.items():
            self._batch[record.id, name] = value
        record.artifacts = {}

    def forget(self) -> None:
        """Drop the batch cache (the engine, when a batch is done)."""
        self._batch.clear()

    def load(self, record: Record, name: str) -> Any:
        """An image as an RGB uint8 array, a side array, or a dict of arrays (for .npz)."""
        value = record.artifacts.get(name, self._batch.get((record.id, name)))
        if value is not None:
            return value if isinstance(value, dict) else np.asarray(value)
        rel = record.images.get(name) or record.aux.get(name)
        if rel is None:
            raise KeyError(f"record {record.id} has no image '{name}'")
        path = self.root / rel
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as arrays:
                return {key: arrays[key] for key in arrays.files}
        from imgdiff.png import read_fast

        pixels = read_fast(path)  # the layout this store writes; None: anything else, for Pillow
        if pixels is not None:
            return pixels
        from imgdiff.pixels import to_rgb  # here: pixels brings OpenCV, which `import store` need not pay

        with Image.open(path) as image:
            return to_rgb(image)


class PartWriter:
    """Appends one stage's output lines for this invocation to its own part file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: Any = None

    def append(self, lines: list[dict[str, Any]]) -> None:
        if not lines:
            return
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Unbuffered: a refused write (full disk) leaves nothing buffered for close() to retry.
            self._handle = self.path.open("ab", buffering=0)
        data = memoryview("".join(dumps(line) + "\n" for line in lines).encode("utf-8"))
        with _naming(self.path):
            while data:
                data = data[self._handle.write(data) :]
            os.fsync(self._handle.fileno())

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def load_records(out: str | Path) -> list[Record]:
    """The records of a run directory (records.jsonl), in canonical order."""
    return RunStore(out).read_records()


def load_finished_records(out: str | Path) -> list[Record]:
    """`load_records` for readers that score a run (eval, predict): they say so, as a warning, when
    the run is not finished (work pending, or stopped), since the numbers then cover part of it."""
    store = RunStore(out)
    if not (store.read_stats() or {}).get("complete"):
        log.warning(
            "%s is not a finished run (work is pending or it was stopped): the numbers cover only the "
            "records finished so far; run the same `imgdiff run` command to finish it",
            store.root,
        )
    return store.read_records()


class RunStore:
    """A run directory: owns every path in it (the module docstring shows the layout)."""

    def __init__(self, root: Path | str, image_format: str = "png") -> None:
        self.root = Path(root)
        self.image_format = image_format
        self.images = ImageLoader(self.root)

    @classmethod
    def existing(cls, root: Path | str) -> RunStore:
        """The run directory `root`, or a one-line UsageError when it holds no run."""
        store = cls(root)
        if not store.run_json.is_file():
            raise UsageError(f"'{root}' is not an imgdiff run directory (no run.json)")
        return store

    # -- layout: the only place that spells a run directory's names ------------------------------
    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def records_path(self) -> Path:
        return self.root / "records.jsonl"

    @property
    def stats_path(self) -> Path:
        return self.root / "stats.json"

    @property
    def stages_dir(self) -> Path:
        return self.root / "stages"

    def stage_dir(self, stage: str) -> Path:
        return self.stages_dir / stage

    def table_path(self, stage: str, table: str) -> Path:
        return self.stage_dir(stage) / f"{table}.parquet"

    def tables(self) -> list[tuple[str, str]]:
        """(stage, table) of every side table written, sorted."""
        return sorted((p.parent.name, p.stem) for p in self.stages_dir.glob("*/*.parquet"))

    def part_paths(self) -> list[Path]:
        """Every stage's part files."""
        return sorted(self.stages_dir.glob("*/part-*.jsonl"))

    def merged_part_path(self, part: Path, shard: RunStore) -> Path:
        """Where a shard's part file goes in the merged run: its name says which shard it came from."""
        return self.stage_dir(part.parent.name) / f"part-{shard.root.name}-{part.name.removeprefix('part-')}"

    @property
    def artifact_dirs(self) -> tuple[Path, Path]:
        """The folders of images and side arrays."""
        return self.root / "images", self.root / "aux"

    @property
    def export_dir(self) -> Path:
        """Where `export` writes its formats by default (DIR/export/<format>/)."""
        return self.root / "export"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    def log_path(self, invocation: int) -> Path:
        return self.logs_dir / f"run-{invocation:05d}.log"

    @property
    def tmp_dir(self) -> Path:
        return self.root / ".tmp"

    @property
    def dry_run_dir(self) -> Path:
        """An empty run directory that `run --dry-run --fresh` surveys (never created)."""
        return self.tmp_dir / "dry-run-fresh"

    @property
    def shards_dir(self) -> Path:
        return self.root / "shards"

    def shard(self, index: int, count: int) -> RunStore:
        """The run directory of shard `index` of `count`."""
        return RunStore(self.shards_dir / f"{index}-of-{count}", self.image_format)

    def shard_counts(self) -> set[int]:
        """The shard counts N of the DIR/shards/I-of-N folders present."""
        return {int(d.name.split("-of-")[1]) for d in self.shards_dir.glob("*-of-*")}

    def sweep(self) -> None:
        """Remove what writes cut short by a kill left behind: `.tmp/`, and the temporaries older
        versions wrote beside run.json, records.jsonl and stats.json; cut the last line of a part
        file that a kill cut short, once, so that it is not reported on every later command."""
        import shutil

        shutil.rmtree(self.tmp_dir, ignore_errors=True)
        for stray in self.root.glob(_STRAY_TMP):
            stray.unlink(missing_ok=True)
        self.cut_torn_parts()

    def cut_torn_parts(self) -> None:
        """Cut the last line of every part file whose last write was cut short (a kill, a full
        disk), once, so that it is not reported on every later command."""
        for part in self.part_paths():
            _cut_torn_tail(part)

    @contextmanager
    def locked(self, read_only: bool = False) -> Iterator[None]:
        """One process at a time per run directory; a second one is told so in one line.

        `read_only`: the caller only reads the run (an export elsewhere); on a run directory that
        cannot be written, which no process can change, it goes on without the lock."""
        try:
            handle = (self.root / _LOCK).open("w")
        except OSError as exc:
            if read_only and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                yield
                return
            raise
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UsageError(
                    f"{self.root}: another imgdiff process is using this run directory"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def create(self) -> None:
        """Make the directory, or explain in one line why it cannot be."""
        self.check_location()
        try:
            self.logs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--out {self.root}: cannot create it: {exc.strerror}") from None

    def check_location(self) -> None:
        """A run directory may be new, empty, or an imgdiff run; never below a file."""
        for parent in [self.root, *self.root.parents]:
            if parent.exists() and not parent.is_dir():
                raise UsageError(f"--out {self.root}: '{parent}' is a file, not a directory")
        leftovers = (
            {p.name for p in self.root.iterdir()}
            - {p.name for p in (self.shards_dir, self.logs_dir, self.tmp_dir)}
            - {_LOCK}
            - {p.name for p in self.root.glob(_STRAY_TMP)}
            if self.root.is_dir()
            else set()
        )
        if leftovers and not self.run_json.exists():
            raise UsageError(f"--out {self.root}: exists and is not an imgdiff run directory")

    def clear(self) -> None:
        """Remove a previous run's contents (--fresh); only ever called on an imgdiff run."""
        import shutil

        outputs = (
            self.run_json,
            self.records_path,
            self.stats_path,
            self.stages_dir,
            *self.artifact_dirs,
            self.export_dir,
        )
        for path in (*outputs, *(self.root / name for name in _DERIVED), self.shards_dir):
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()

    def invocation(self) -> int:
        """A number for this invocation's log and part files: one more than any before."""
        numbers = [
            int(p.stem.split("-")[1])
            for p in self.logs_dir.glob("run-*.log")
            if p.stem.split("-")[1].isdigit()
        ]
        return max(numbers, default=0) + 1

    # -- run.json ----------------------------------------------------------------------------
    def read_meta(self) -> dict[str, Any] | None:
        if not self.run_json.exists():
            return None
        try:
            return json.loads(self.run_json.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise UsageError(f"{self.run_json} is corrupt; pass --fresh to start the run over") from None

    def write_meta(self, meta: dict[str, Any]) -> None:
        text = json.dumps(meta, indent=2, ensure_ascii=False) + "\n"
        atomic_write(self.run_json, text.encode(), self.tmp_dir)

    # -- artifacts ---------------------------------------------------------------------------
    def place(self, record: Record) -> None:
        """Name the files of the record's artifacts (id-derived paths, relative to the run) in
        record.images / record.aux; writes nothing."""
        shard = record.id[:2]
        for name, value in record.artifacts.items():
            if name in IMAGE_NAMES:
                ext = "png" if self.image_format == "png" else "webp"
                record.images[name] = f"images/{shard}/{record.id}_{name}.{ext}"
            else:
                suffix = "npz" if isinstance(value, dict) else "npy"
                record.aux[name] = f"aux/{shard}/{record.id}_{name}.{suffix}"

    def write_artifacts(self, record: Record) -> None:
        """Write the record's artifacts at the paths `place` names (placing them first)."""
        self.place(record)
        for name, value in record.artifacts.items():
            if name in IMAGE_NAMES:
                data = encode_image(value, self.image_format)
                rel = record.images[name]
            elif isinstance(value, dict):
                data, rel = encode_npz(value), record.aux[name]
            else:
                buffer = io.BytesIO()
                np.save(buffer, np.asarray(value), allow_pickle=False)
                data, rel = buffer.getvalue(), record.aux[name]
            atomic_write(self.root / rel, data, self.tmp_dir)

    # -- parts -----------------------------------------------------------------------------------
    def part_writer(self, stage: str, invocation: int) -> PartWriter:
        return PartWriter(self.stage_dir(stage) / f"part-{invocation:05d}.jsonl")

    def read_parts(self, stage: str) -> dict[str, dict[str, Any]]:
        """input id -> its latest part line ({"in", "fp", "out"}) for one stage."""
        latest: dict[str, dict[str, Any]] = {}
        for path in sorted(self.stage_dir(stage).glob("part-*.jsonl")):
            for n, line in _lines(path):
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    log.warning("%s line %d is incomplete (an interrupted write); ignored", path, n)
                    continue
                latest[entry["in"]] = entry
        return latest

    # -- records and stats --------------------------------------------------------------------
    def read_records(self) -> list[Record]:
        """The records of records.jsonl, in canonical order."""
        return list(self.iter_records())

    def iter_records(self) -> Iterator[Record]:
        """`read_records` one record at a time, for readers whose memory must not grow with the run."""
        if not self.records_path.is_file():
            raise UsageError(
                f"'{self.root}' has no records.jsonl (not an imgdiff run, or it has not finished a batch)"
            )
        for n, line in _lines(self.records_path):
            try:
                yield Record.from_dict(json.loads(line))
            except json.JSONDecodeError:
                raise UsageError(
                    f"{self.records_path} line {n} is cut short or corrupt: run the same `imgdiff run` "
                    "command again to rewrite it from the parts"
                ) from None
            except (ValueError, TypeError) as exc:  # a newer schema_version, fields it does not know
                raise UsageError(f"{self.records_path} line {n}: {exc}") from None

    def write_records(self, records: list[Record]) -> None:
        ordered = sorted(records, key=Record.sort_key)
        text = "".join(dumps(r.to_dict()) + "\n" for r in ordered)
        atomic_write(self.records_path, text.encode("utf-8"), self.tmp_dir)

    def write_table(self, stage: str, table: str, rows: list[dict[str, Any]]) -> None:
        """A stage's side table as Parquet, rewritten atomically like records.jsonl."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(rows), buffer)
        atomic_write(self.table_path(stage, table), buffer.getvalue(), self.tmp_dir)

    def write_stats(self, stats: dict[str, Any]) -> None:
        atomic_write(self.stats_path, (json.dumps(stats, indent=2) + "\n").encode(), self.tmp_dir)

    # -- readers (report, audit): streaming and tolerant, so any run renders ---------------------
    def iter_record_dicts(self) -> Iterator[dict[str, Any]]:
        """records.jsonl one line at a time as plain dicts (fields later versions add pass through);
        a line cut short is skipped with a warning."""
        if not self.records_path.is_file():
            raise UsageError(f"'{self.root}' has no records.jsonl (not an imgdiff run, or no batch finished)")
        for n, line in _lines(self.records_path):
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s line %d is not JSON; skipped", self.records_path, n)

    def read_stats(self) -> dict[str, Any] | None:
        """The funnel of the last invocation, or None before the first one finished."""
        if not self.stats_path.is_file():
            return None
        try:
            return json.loads(self.stats_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise UsageError(f"{self.stats_path} is corrupt") from None

    def log_paths(self) -> list[Path]:
        """The invocations' logs, oldest first."""
        return sorted(self.logs_dir.glob("run-*.log"))

    @property
    def audit_dir(self) -> Path:
        return self.root / "audit"

    @property
    def report_dir(self) -> Path:
        return self.root / "report"


def _cut_torn_tail(part: Path) -> None:
    """Truncate a part file after its last whole line when a kill cut the last one short (parts are
    only ever appended to, so only the last line can be torn). Reads the file's tail only."""
    with part.open("r+b") as handle:
        size = handle.seek(0, os.SEEK_END)
        tail, start = b"", size
        while start > 0 and tail.count(b"\n") < 2:  # the last line and the newline before it
            start = max(0, start - (1 << 16))
            handle.seek(start)
            tail = handle.read(size - start)
        body = tail.rstrip(b"\n") if tail.endswith(b"\n") else tail
        head, newline, last = body.rpartition(b"\n")
        if not body or tail.endswith(b"\n") and _is_json(last):
            return
        keep = start + len(head) + len(newline)
        log.warning("%s: removed its last line, cut short by an interrupted write (its work is redone)", part)
        handle.truncate(keep)
        handle.flush()
        os.fsync(handle.fileno())


def _is_json(line: bytes) -> bool:
    try:
        json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return True


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        for n, line in enumerate(handle, 1):
            if line.strip():
                yield n, line


def encode_image(value: Any, image_format: str) -> bytes:
    """A run image's file: an RGB array as `png_fast` PNG (imgdiff/png.py: Sub rows, ISA-L, several
    times faster than Pillow and read back by `read_fast`), anything else by Pillow."""
    if image_format == "png" and _is_rgb_array(value):
        from imgdiff.png import png_fast

        return png_fast(value)
    image = value if isinstance(value, Image.Image) else Image.fromarray(np.asarray(value))
    if image_format == "png":
        return pillow_png(image)
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP", lossless=True, quality=100, method=4)
    return buffer.getvalue()


def pillow_png(image: Image.Image) -> bytes:
    """Pillow's PNG at zlib level 1 (the run store's bytes before version 2 of the exports; 1.6x
    faster than the default 6 on 512 px quickstart scenes, files 12% larger, benchmarks/png_levels.py)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _is_rgb_array(value: Any) -> bool:
    return (
        isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.ndim == 3 and value.shape[2] == 3
    )


def encode_npz(arrays: dict[str, Any]) -> bytes:
    """An .npz (np.load reads it) with fixed timestamps, so equal arrays give equal bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key in sorted(arrays):
            member = io.BytesIO()
            np.save(member, np.asarray(arrays[key]), allow_pickle=False)
            archive.writestr(
                zipfile.ZipInfo(f"{key}.npy", _ZIP_DATE), member.getvalue(), zipfile.ZIP_DEFLATED
            )
    return buffer.getvalue()
