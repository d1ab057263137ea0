"""Every sample's picture, rendered and encoded once per export call, in parallel, in order.

`encoded(samples, ...)` yields (sample, bytes) in the samples' order while encoding runs ahead in
`workers` threads (export/parallel.py). A pair's two images are decoded once for all its samples
(they are consecutive in canonical order). At most a few chunks are in flight, so memory stays flat
however large the run.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from imgdiff.export.options import ExportOptions
from imgdiff.export.parallel import ordered_map
from imgdiff.export.samples import Sample
from imgdiff.png import read_fast, read_rows
from imgdiff.record import Record
from imgdiff.store import ImageLoader

CHUNK = 4  # samples per task: enough to amortise a task, small enough to spread over workers
AHEAD = 3  # chunks in flight per worker: keeps workers busy while the writers take a chunk


def extension(options: ExportOptions) -> str:
    return "jpg" if options.image_format == "jpeg" else "png"


def encode(image: np.ndarray, options: ExportOptions) -> bytes:
    if options.image_format == "jpeg":
        import io

        from PIL import Image

        buffer = io.BytesIO()
        # 4:4:4: chroma subsampling would smear the 3 px red frame
        Image.fromarray(image).save(buffer, format="JPEG", quality=options.jpeg_quality, subsampling=0)
        return buffer.getvalue()
    if options.png_encoder == "fast":
        from imgdiff.png import png_fast

        return png_fast(image)
    from imgdiff.render import png_bytes

    return png_bytes(image)


def encoded(
    samples: Iterable[Sample], run_dir: Path, options: ExportOptions
) -> Iterator[tuple[Sample, bytes]]:
    loader = ImageLoader(Path(run_dir))
    workers = options.workers
    for _chunk, done in ordered_map(
        lambda chunk: _encode_chunk(chunk, loader, options), _chunks(samples), workers, AHEAD * workers
    ):
        yield from done


def _chunks(samples: Iterable[Sample]) -> Iterator[list[Sample]]:
    """Consecutive runs of samples, never splitting one pair's samples (decoded once per chunk)."""
    chunk: list[Sample] = []
    for sample in samples:
        if len(chunk) >= CHUNK and sample.record.id != chunk[-1].record.id:
            yield chunk
            chunk = []
        chunk.append(sample)
    if chunk:
        yield chunk


def _encode_chunk(
    chunk: list[Sample], loader: ImageLoader, options: ExportOptions
) -> list[tuple[Sample, bytes]]:
    out: list[tuple[Sample, bytes]] = []
    pair: _Pair | None = None
    for sample in chunk:
        if pair is None or sample.record.id != pair.record.id:
            pair = _Pair(loader, sample.record)
        out.append((sample, _picture(sample, pair, options)))
    return out


def _picture(sample: Sample, pair: _Pair, options: ExportOptions) -> bytes:
    """The sample's encoded picture. A PNG of two run images in the store's own layout is made from
    their Sub rows (`render.side_by_side_scanlines`: the same bytes as encoding the drawn picture,
    without undoing and redoing the filter on the rows the frame does not cross)."""
    if options.image_format == "png" and options.png_encoder == "fast":
        rows = pair.rows()
        if rows is not None:
            from imgdiff.png import png_from_filtered
            from imgdiff.render import side_by_side_scanlines

            swapped, box = sample.framing()
            left, right = (rows[1], rows[0]) if swapped else rows
            return png_from_filtered(side_by_side_scanlines(left, right, box))
    return encode(sample.picture(*pair.pixels()), options)


class _Pair:
    """A record's images a and b, each read once for all the record's samples: as Sub rows where
    both files are in the store's layout, else (or when pixels are asked for) as RGB pixels."""

    def __init__(self, loader: ImageLoader, record: Record) -> None:
        self.loader, self.record = loader, record
        self._rows: tuple[np.ndarray, np.ndarray] | None = None
        self._pixels: tuple[np.ndarray, np.ndarray] | None = None
        self._rows_tried = False

    def rows(self) -> tuple[np.ndarray, np.ndarray] | None:
        if not self._rows_tried:
            self._rows_tried = True
            a, b = self._stored_rows("a"), self._stored_rows("b")
            if a is not None and b is not None and a.shape == b.shape:
                self._rows = a, b
        return self._rows

    def pixels(self) -> tuple[np.ndarray, np.ndarray]:
        if self._pixels is None:
            if self._rows is not None:
                from imgdiff.png import undo_sub

                self._pixels = undo_sub(self._rows[0]), undo_sub(self._rows[1])
            else:
                self._pixels = _load(self.loader, self.record, "a"), _load(self.loader, self.record, "b")
        return self._pixels

    def _stored_rows(self, name: str) -> np.ndarray | None:
        path = _stored_path(self.loader, self.record, name)
        return None if path is None else read_rows(path)


def _stored_path(loader: ImageLoader, record: Record, name: str) -> Path | None:
    """The run's file of image `name`; None when the record holds it in memory or has no file."""
    rel = record.images.get(name)
    return None if rel is None or name in record.artifacts else loader.root / rel


def _load(loader: ImageLoader, record: Record, name: str) -> np.ndarray:
    """The pair's image as RGB: the store's own layout by `read_fast` (decoding the pair is the
    largest cost left once encoding is fast); else by Pillow, a file already RGB not converted."""
    path = _stored_path(loader, record, name)
    if path is None:
        return loader.load(record, name)
    pixels = read_fast(path)
    if pixels is not None:
        return pixels
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
