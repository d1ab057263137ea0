"""Source `pairs`: the user's own image pairs, one JSON object per line.

    {"image_a": "a.png", "image_b": "b.png", "caption_a": "...", "caption_b": "...",
     "edit": {"old": "cat", "new": "dog"}, "kind": "replacement"}

Image paths are relative to the JSONL file's folder. Only `image_a` and `image_b` are required.
A malformed line, a missing or corrupt image, or two images of different sizes becomes a rejected
record with its reason; the run goes on. The images are copied into the run (lossless), so a run
directory is complete on its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from imgdiff.record import KINDS, Edit, Record
from imgdiff.sources.base import BadItem, FileSource, FileSourceSettings, parse_json_line, require_object

REQUIRED = ("image_a", "image_b")
OPTIONAL = ("caption_a", "caption_b", "edit", "kind")


class PairsSettings(FileSourceSettings):
    """The JSONL file's `path`, nothing else."""


class PairsSource(FileSource):
    type = "pairs"
    version = 1
    Settings = PairsSettings

    def items(self) -> Iterator[str]:
        return self.lines()

    def load(self, batch: list[tuple[Record, Any]]) -> list[Record]:
        out = []
        for record, line in batch:
            try:
                self._fill(record, line)
            except BadItem as exc:
                record.reject("source", str(exc))
            out.append(record)
        return out

    def _fill(self, record: Record, line: str) -> None:
        item = require_object(parse_json_line(line))
        for key in item:
            if key not in REQUIRED + OPTIONAL:
                raise BadItem(f"unknown_key: '{key}' (expected {', '.join(REQUIRED + OPTIONAL)})")
        for key in REQUIRED:
            if not isinstance(item.get(key), str) or not item[key]:
                raise BadItem(f"missing_key: '{key}' must be a non-empty path")
        for key in ("caption_a", "caption_b"):
            value = item.get(key, "")
            if not isinstance(value, str):
                raise BadItem(f"malformed_item: '{key}' must be a string")
            setattr(record, key, value)
        record.edit = _edit(item.get("edit"))
        kind = item.get("kind", "unknown")
        if kind not in KINDS:
            raise BadItem(f"malformed_item: kind '{kind}' is not one of {', '.join(KINDS)}")
        record.kind = kind
        a, b = self._image(item, "image_a"), self._image(item, "image_b")
        if a.shape != b.shape:
            raise BadItem(
                f"size_mismatch: image_a is {a.shape[1]}x{a.shape[0]}, image_b is {b.shape[1]}x{b.shape[0]}"
            )
        record.artifacts.update(a=a, b=b)

    def _image(self, item: dict[str, Any], key: str) -> np.ndarray:
        path = self.path.parent / item[key]
        if not path.is_file():
            raise BadItem(f"missing_file: {key} '{item[key]}' not found")
        try:
            with Image.open(path) as image:
                image.load()
                return np.asarray(image.convert("RGB"))
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
            raise BadItem(f"corrupt_image: {key} '{item[key]}': {exc}") from None


def _edit(value: Any) -> Edit | None:
    if value is None:
        return None
    if (
        not isinstance(value, dict)
        or set(value) - {"old", "new"}
        or not all(isinstance(v, str) for v in value.values())
        or "old" not in value
    ):
        raise BadItem('malformed_item: \'edit\' must be {"old": str, "new": str}')
    return Edit(old=value["old"], new=value.get("new", ""))
