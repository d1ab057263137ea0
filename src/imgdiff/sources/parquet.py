"""Source `parquet`: image pairs kept as a table, such as image-editing datasets (InstructPix2Pix,
MagicBrush, UltraEdit, HQ-Edit), from parquet files or a Hugging Face dataset.

    source: {type: parquet, path: edits/, image_a: input_image, image_b: edited_image,
             caption_a: input_caption, caption_b: output_caption}
    source: {type: parquet, dataset: some-org/some-edits, split: train, image_a: source_img, ...}

`path` is a parquet file or a folder of them (all `*.parquet` below it, in name order); `dataset`
is anything `datasets.load_dataset` takes (a hub id, read from the cache when HF_HUB_OFFLINE or
HF_DATASETS_OFFLINE is set, or a local folder). The recipe maps columns: `image_a` and `image_b`
(required), `caption_a`, `caption_b`, `edit_old`, `edit_new`, `kind` (optional). An image cell may be
the `datasets` Image struct (`bytes`, or a `path` relative to the file), raw encoded bytes, or a
path. A bad row (a null or undecodable image, two sizes, a caption that is not text, an unknown
kind) becomes a record rejected by `source` with its reason; the run goes on. A column the recipe
names that the table lacks fails at once (one line).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from pydantic import field_validator, model_validator

from imgdiff.record import KINDS, Edit, Record
from imgdiff.sources.base import BadItem, Source, SourceSettings, one_line, reject_item
from imgdiff.sources.parquet_tables import DatasetTable, FileTables

TEXT_COLUMNS = ("caption_a", "caption_b", "edit_old", "edit_new", "kind")


class ParquetSettings(SourceSettings):
    path: str | None = None  # a parquet file or a folder of them; made absolute on loading
    dataset: str | None = None  # or what `datasets.load_dataset` takes
    split: str = "train"  # of `dataset`
    revision: str | None = None  # of `dataset` on the hub
    image_a: str
    image_b: str
    caption_a: str | None = None
    caption_b: str | None = None
    edit_old: str | None = None
    edit_new: str | None = None
    kind: str | None = None

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        return None if value is None else str(Path(value).expanduser().absolute())

    @model_validator(mode="after")
    def _one_place(self) -> ParquetSettings:
        if (self.path is None) == (self.dataset is None):
            raise ValueError("give exactly one of `path` (parquet files) and `dataset` (a dataset id)")
        return self

    def columns(self) -> dict[str, str]:
        """role -> column name, for every column the recipe maps."""
        roles = ("image_a", "image_b", *TEXT_COLUMNS)
        return {role: getattr(self, role) for role in roles if getattr(self, role) is not None}


class ParquetSource(Source):
    type = "parquet"
    version = 1
    Settings = ParquetSettings
    settings: ParquetSettings

    def __init__(self, settings: ParquetSettings) -> None:
        super().__init__(settings)
        self._table: FileTables | DatasetTable | None = None

    @property
    def table(self) -> FileTables | DatasetTable:
        if self._table is None:
            columns = list(dict.fromkeys(self.settings.columns().values()))
            if self.settings.path is not None:
                self._table = FileTables(Path(self.settings.path), columns)
            else:
                self._table = DatasetTable(
                    self.settings.dataset, self.settings.split, self.settings.revision, columns
                )
        return self._table

    def check(self) -> None:
        self.table.check()

    def fingerprint(self) -> str:
        mapping = sorted(self.settings.columns().items())
        digest = hashlib.sha256(f"{self.type}:v{self.version}:{mapping}:".encode())
        self.table.fingerprint(digest)
        return digest.hexdigest()[:16]

    def count(self) -> int:
        return self.table.rows()

    def items(self) -> Iterator[int]:
        return iter(range(self.table.rows()))

    def load(self, batch: list[tuple[Record, Any]]) -> list[Record]:
        # Rows are read a batch at a time (one pass over the row groups); if that read fails, one
        # row at a time, so that only the rows that cannot be read are rejected.
        try:
            rows = self.table.read([row for _, row in batch])
        except Exception:
            return [self.load_one(record, row) for record, row in batch]
        return [self._filled(record, row, base) for (record, _), (row, base) in zip(batch, rows, strict=True)]

    def fill(self, record: Record, item: Any) -> None:
        ((row, base),) = self.table.read([item])
        self._fill(record, row, base)

    def _filled(self, record: Record, row: dict[str, Any], base: Path | None) -> Record:
        try:
            self._fill(record, row, base)
        except BadItem as exc:
            reject_item(record, str(exc))
        except Exception as exc:  # one row's failure, whatever it is, must not stop the run
            reject_item(record, f"malformed_item: {one_line(exc)}")
        return record

    def _fill(self, record: Record, row: dict[str, Any], base: Path | None) -> None:
        columns = self.settings.columns()
        text = {}
        for role in TEXT_COLUMNS:
            value = row.get(columns[role]) if role in columns else None
            if value is not None and not isinstance(value, str):
                raise BadItem(f"malformed_item: column '{columns[role]}' ({role}) must be text")
            text[role] = value
        record.caption_a, record.caption_b = text["caption_a"] or "", text["caption_b"] or ""
        if text["edit_old"]:
            record.edit = Edit(old=text["edit_old"], new=text["edit_new"] or "")
        kind = text["kind"] or "unknown"
        if kind not in KINDS:
            raise BadItem(f"malformed_item: kind '{kind}' is not one of {', '.join(KINDS)}")
        record.kind = kind  # type: ignore[assignment]
        a = _pixels(row.get(columns["image_a"]), columns["image_a"], base)
        b = _pixels(row.get(columns["image_b"]), columns["image_b"], base)
        if a.shape != b.shape:
            raise BadItem(
                f"size_mismatch: image_a is {a.shape[1]}x{a.shape[0]}, image_b is {b.shape[1]}x{b.shape[0]}"
            )
        record.artifacts.update(a=a, b=b)


def _pixels(value: Any, column: str, base: Path | None) -> np.ndarray:
    """An RGB array from an image cell: {bytes, path}, bytes, or a path (relative to `base`)."""
    if isinstance(value, dict):
        value = value.get("bytes") or value.get("path")
    if value is None:
        raise BadItem(f"missing_key: column '{column}' is null")
    if isinstance(value, str):
        path = Path(value) if base is None else base / value
        if not path.is_file():
            raise BadItem(f"missing_file: column '{column}': '{value}' not found")
        value = path.read_bytes()
    if not isinstance(value, bytes):
        raise BadItem(f"malformed_item: column '{column}' holds {type(value).__name__}, not an image")
    try:
        with Image.open(io.BytesIO(value)) as image:
            image.load()
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise BadItem(f"corrupt_image: column '{column}': {exc}") from None
