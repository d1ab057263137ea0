"""Export options: which samples (`where`, `dedup`, `max_per_object`), how they are split, how the
pictures are encoded, and how large files grow. The same settings come from `imgdiff export` flags
or from a recipe's `export:` section:

    export: [llava, parquet]                       # formats only, default options
    export:
      formats: [llava, parquet]
      where: 'regions.changed_area < 0.1 and kind == "replacement"'
      split: {train: 0.95, val: 0.05}
      dedup: true
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, field_validator

from imgdiff.errors import UsageError, did_you_mean
from imgdiff.settings import Settings, validate


class ExportOptions(Settings):
    where: str | None = None  # an expression over a sample's fields (export/where.py)
    split: dict[str, float] | None = None  # split name -> share; shares sum to 1
    dedup: bool = False  # drop repeated difference texts and near-duplicate pairs
    dedup_distance: int = Field(default=4, ge=0, le=32)  # perceptual-hash bits two pairs may differ by
    max_per_object: int | None = Field(default=None, ge=1)  # samples per replaced/removed object
    image_format: Literal["png", "jpeg"] = "png"
    # `fast`: Sub-filtered rows deflated by ISA-L (imgdiff/png.py); `pillow`: Pillow at zlib level 1,
    # the bytes exports had before version 2 of the formats, 8-9x slower to encode; same pixels
    png_encoder: Literal["fast", "pillow"] = "fast"
    jpeg_quality: int = Field(default=90, ge=1, le=100)
    workers: int = Field(default=2, ge=1)  # encoding threads; changes speed, never bytes
    shard_mb: int = Field(default=1000, ge=1)  # webdataset tar / parquet file size cap
    row_group_mb: int = Field(default=100, ge=1)  # parquet row group size cap

    RUNTIME = frozenset({"workers"})

    @field_validator("split")
    @classmethod
    def _shares(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("needs at least one split")
        for name, share in value.items():
            if not name.isidentifier() or not 0 < share <= 1:
                raise ValueError(f"split '{name}={share}': a name and a share in (0, 1]")
        if not math.isclose(sum(value.values()), 1.0, abs_tol=1e-6):
            raise ValueError(f"the shares sum to {sum(value.values()):g}, not 1")
        return value

    def fingerprint_fields(self) -> dict[str, Any]:
        """What changes the output: every option except the speed knobs."""
        return {k: v for k, v in self.model_dump(mode="json").items() if k not in self.RUNTIME}


def parse_split(text: str) -> dict[str, float]:
    """`train=0.95,val=0.05` -> {"train": 0.95, "val": 0.05}; UsageError naming the bad part."""
    out: dict[str, float] = {}
    for part in text.split(","):
        name, sep, share = (piece.strip() for piece in part.partition("="))
        try:
            value = float(share)
        except ValueError:
            value = math.nan
        if not sep or not name or math.isnan(value):
            raise UsageError(f"--split: expected NAME=SHARE[,NAME=SHARE...], got '{part.strip()}'")
        out[name] = value
    return out


def build_options(data: dict[str, Any], where: str) -> ExportOptions:
    """Validated options (one-line UsageError), the expression checked too."""
    options = validate(ExportOptions, data, where)
    if options.where is not None:
        from imgdiff.export.where import parse

        parse(options.where)  # a syntax error exits before any work
    return options  # type: ignore[return-value]


def parse_section(raw: Any, where: str, formats_known: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """A recipe's `export:`: a list of formats, or a mapping with `formats` and options.
    Returns (formats, options as given); the options are validated here."""
    if isinstance(raw, list):
        formats, options = raw, {}
    elif isinstance(raw, dict):
        options = dict(raw)
        formats = options.pop("formats", [])
        if not isinstance(formats, list):
            raise UsageError(f"{where}: export.formats: expected a list of formats, got {formats!r}")
        build_options(options, f"{where}: export")
    else:
        raise UsageError(f"{where}: export: expected a list of formats or a mapping, got {raw!r}")
    for fmt in formats:
        if not isinstance(fmt, str) or fmt not in formats_known:
            raise UsageError(
                f"{where}: export: format '{fmt}' is not available{did_you_mean(str(fmt), formats_known)}"
            )
    return formats, options
