"""Parquet files that `datasets.load_dataset("parquet", data_dir=...)` (or `load_dataset(folder)`)
reads: the picture as the `Image` feature (PNG/JPEG bytes embedded), and every field of
`Sample.fields()` as a column (question, answer, captions, edit, box, every score).

Files are `data/<split>-NNNNN.parquet` (a name `datasets` maps to its split; an empty split has
none, as `datasets` refuses a split without rows), a new one started
when a file passes `shard_mb`; rows are buffered and written as a row group whenever the buffer's
pictures pass `row_group_mb`, so memory holds at most one row group whatever the run's size. The
buffer turns into Arrow every `BATCH` rows, so a row group is held once (as Arrow), not also as
Python rows. The schema
carries the `datasets` features in its metadata, so the images decode and the columns keep their
types without guessing. Every file has the same columns (the union over the export's samples;
a score a sample lacks is null).
"""

from __future__ import annotations

from typing import Any

from imgdiff.export.base import Exporter
from imgdiff.export.samples import Sample

MB = 1 << 20
BATCH = 64  # rows turned into one Arrow record batch at a time


def features_of(columns: dict[str, Any]) -> Any:
    """`datasets.Features`: the `image` column, then each field (name -> a non-null value of it, or
    None when every sample has null there) typed by its value."""
    from datasets import Features, Image, List, Value

    features: dict[str, Any] = {"image": Image()}
    for name, value in columns.items():
        if name == "choices" or (isinstance(value, list) and value and isinstance(value[0], str)):
            features[name] = List(Value("string"))
        elif isinstance(value, list):
            features[name] = List(Value("float64"))
        elif isinstance(value, bool):
            features[name] = Value("bool")
        elif isinstance(value, int):
            features[name] = Value("int64")
        elif isinstance(value, float):
            features[name] = Value("float64")
        else:
            features[name] = Value("string")
    return Features(features)


class ParquetExporter(Exporter):
    format = "parquet"
    version = 2  # 2: PNGs by the fast encoder by default

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.features = features_of(self.context.columns)
        self.schema = self.features.arrow_schema
        self.rows: list[dict[str, Any]] = []  # not yet Arrow
        self.batches: list[Any] = []  # the row group so far, as Arrow record batches
        self.buffered = 0
        self.writer: Any = None
        self.split: str | None = None
        self.shard = -1
        self.files: list[str] = []
        self.example: dict[str, Any] | None = None

    def add(self, sample: Sample, split: str, picture: bytes) -> None:
        if split != self.split:
            self._flush()
            self._next_file(split)
        fields = sample.fields()
        self.example = self.example or {k: v for k, v in fields.items()}
        self.rows.append({"image": {"bytes": picture, "path": self.picture_path(sample)}, **fields})
        self.buffered += len(picture) + 512
        if len(self.rows) >= BATCH:
            self._to_arrow()
        if self.buffered >= self.context.options.row_group_mb * MB:
            self._flush()
            if (self.to / self.files[-1]).stat().st_size >= self.context.options.shard_mb * MB:
                self._next_file(split)

    def finish(self) -> dict[str, Any]:
        self._flush()
        if self.writer is not None:
            self.writer.close()
        self.writer = None
        names = sorted(self.files)
        sample_format = (
            "`data/<split>-NNNNN.parquet`: one row per sample; `image` is the `datasets` Image "
            "feature (the encoded picture, the pair side by side with the red box, in `bytes`), "
            "then every field of the sample: `id`, `type` (`difference` or `choice`), `question`, "
            "`answer`, `choices`, the box (`region.*`), the pair's captions and edit, and every "
            f"score of the pair (`<stage>.<score>`). Files: {', '.join(f'`{n}`' for n in names) or 'none'}."
        )
        loading = (
            "```python\nfrom datasets import load_dataset\n\n"
            'data = load_dataset("parquet", data_dir="<this folder>/data")\n'
            'data["train"][0]["image"]  # a PIL image\n```\n\n`datasets` names a split from its file '
            "names and reads `val` as `validation`."
        )
        self.write_card(sample_format, self.example, loading)
        return {"format": self.format, **self.context.counts(), "files": len(names) + 1}

    def _next_file(self, split: str) -> None:
        import pyarrow.parquet as pq

        if self.writer is not None:
            self.writer.close()
        self.shard = self.shard + 1 if split == self.split else 0
        self.split = split
        rel = f"data/{split}-{self.shard:05d}.parquet"
        (self.to / rel).parent.mkdir(parents=True, exist_ok=True)
        self.files.append(rel)
        # no dictionary for the pictures: no two are alike, and hashing each for one costs time
        dictionary = [name for name in self.schema.names if name != "image"] + ["image.path"]
        self.writer = pq.ParquetWriter(
            self.to / rel, self.schema, compression="zstd", use_dictionary=dictionary
        )

    def _to_arrow(self) -> None:
        import pyarrow as pa

        encoded = [self.features.encode_example(row) for row in self.rows]
        self.batches.append(pa.RecordBatch.from_pylist(encoded, schema=self.schema))
        self.rows = []

    def _flush(self) -> None:
        """Write the buffered rows as one row group."""
        if self.rows:
            self._to_arrow()
        if not self.batches:
            return
        import pyarrow as pa

        table = pa.Table.from_batches(self.batches, schema=self.schema)
        self.writer.write_table(table, row_group_size=table.num_rows)
        self.batches, self.buffered = [], 0
