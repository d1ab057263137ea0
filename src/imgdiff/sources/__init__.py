"""The source registry: `source: {type: NAME, ...}` in a recipe picks one of these."""

from __future__ import annotations

from imgdiff.sources.base import Source
from imgdiff.sources.captions import CaptionsSource
from imgdiff.sources.copy_paste import CopyPasteSource
from imgdiff.sources.pairs import PairsSource
from imgdiff.sources.parquet import ParquetSource
from imgdiff.sources.photos import PhotosSource
from imgdiff.sources.synthetic import SyntheticSource

SOURCES: dict[str, type[Source]] = {
    "captions": CaptionsSource,
    "pairs": PairsSource,
    "copy_paste": CopyPasteSource,
    "synthetic": SyntheticSource,
    "parquet": ParquetSource,
    "photos": PhotosSource,
}
