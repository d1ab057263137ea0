"""Where the `parquet` source's rows come from: parquet files read with pyarrow (row groups on
demand, only the mapped columns), or a dataset loaded by `datasets`. Both number rows 0..n-1 in a
fixed order and give a row as {column: value} plus the folder relative paths resolve against."""

from __future__ import annotations

import bisect
from pathlib import Path
from typing import Any

from imgdiff.errors import UsageError

Row = tuple[dict[str, Any], Path | None]


class FileTables:
    """`*.parquet` at `path` (a file, or every one below a folder in name order)."""

    def __init__(self, path: Path, columns: list[str]) -> None:
        self.path = path
        self.columns = columns
        self._files: list[Path] | None = None
        self._starts: list[int] = []  # first global row of each (file, row group)
        self._groups: list[tuple[int, int]] = []  # (file index, row group index)
        self._cached: tuple[int, list[dict[str, Any]]] | None = None  # one decoded row group

    def files(self) -> list[Path]:
        if self._files is None:
            if self.path.is_file():
                self._files = [self.path]
            elif self.path.is_dir():
                self._files = sorted(self.path.rglob("*.parquet"))
            else:
                raise UsageError(f"source.path: '{self.path}' not found")
            if not self._files:
                raise UsageError(f"source.path: no .parquet files in '{self.path}'")
            self._index()
        return self._files

    def _index(self) -> None:
        import pyarrow.parquet as pq

        start = 0
        for f, path in enumerate(self._files or []):
            try:
                meta = pq.ParquetFile(path)
            except Exception as exc:  # pyarrow raises several types for a file that is not parquet
                raise UsageError(
                    f"source.path: '{path}' is not a readable parquet file: {_one_line(exc)}"
                ) from None
            names = set(meta.schema_arrow.names)
            for column in self.columns:
                if column not in names:
                    raise UsageError(
                        f"source: no column '{column}' in '{path.name}' (columns: {', '.join(sorted(names))})"
                    )
            for g in range(meta.num_row_groups):
                self._starts.append(start)
                self._groups.append((f, g))
                start += meta.metadata.row_group(g).num_rows
        self._total = start

    def check(self) -> None:
        self.files()

    def rows(self) -> int:
        self.files()
        return self._total

    def fingerprint(self, digest: Any) -> None:
        for path in self.files():
            digest.update(f"{path.relative_to(self.path) if self.path.is_dir() else path.name}:".encode())
            with path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)

    def read(self, indices: list[int]) -> list[Row]:
        self.files()
        out = []
        for index in indices:
            group = bisect.bisect_right(self._starts, index) - 1
            rows = self._group(group)
            out.append((rows[index - self._starts[group]], self.files()[self._groups[group][0]].parent))
        return out

    def _group(self, group: int) -> list[dict[str, Any]]:
        """A row group's rows; batches walk rows in order, so keeping the last one read suffices."""
        import pyarrow.parquet as pq

        if self._cached is None or self._cached[0] != group:
            f, g = self._groups[group]
            table = pq.ParquetFile(self.files()[f]).read_row_group(g, columns=self.columns)
            self._cached = (group, table.to_pylist())
        return self._cached[1]


class DatasetTable:
    """A dataset `datasets.load_dataset` loads (a hub id honours HF_HUB_OFFLINE / HF_DATASETS_OFFLINE)."""

    def __init__(self, name: str | None, split: str, revision: str | None, columns: list[str]) -> None:
        self.name, self.split, self.revision, self.columns = name, split, revision, columns
        self._data: Any = None

    def data(self) -> Any:
        if self._data is None:
            try:
                import datasets
            except ImportError:
                raise UsageError(
                    "source.dataset needs the `datasets` package: pip install 'imgdiff[export]'"
                ) from None
            try:
                data = datasets.load_dataset(self.name, split=self.split, revision=self.revision)
            except Exception as exc:  # offline and not cached, no such dataset or split, ...
                raise UsageError(
                    f"source.dataset: cannot load '{self.name}' split '{self.split}': {_one_line(exc)}"
                ) from None
            missing = [c for c in self.columns if c not in data.column_names]
            if missing:
                raise UsageError(
                    f"source: no column '{missing[0]}' in dataset '{self.name}' "
                    f"(columns: {', '.join(sorted(data.column_names))})"
                )
            for column in self.columns:  # images as {bytes, path}: decoded by the source, a bad one rejected
                if isinstance(data.features[column], datasets.Image):
                    data = data.cast_column(column, datasets.Image(decode=False))
            self._data = data.select_columns(self.columns)
        return self._data

    def check(self) -> None:
        self.data()

    def rows(self) -> int:
        return len(self.data())

    def fingerprint(self, digest: Any) -> None:
        digest.update(f"{self.name}@{self.revision}:{self.split}:{self.data()._fingerprint}".encode())

    def read(self, indices: list[int]) -> list[Row]:
        data = self.data()
        return [(data[i], None) for i in indices]


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
