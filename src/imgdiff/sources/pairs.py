"""Source `pairs`: the user's own image pairs, one JSON object per line.

    {"image_a": "a.png", "image_b": "b.png", "caption_a": "...", "caption_b": "...",
     "edit": {"old": "cat", "new": "dog"}, "kind": "replacement"}

Image paths are relative to the JSONL file's folder and must stay inside it (no absolute paths,
no `..` out of it) unless `allow_outside_paths: true`: a pairs file from elsewhere must not pull
any image of the machine into a dataset. Only `image_a` and `image_b` are required. A malformed
line, an unsafe path, a missing, corrupt or too large image (`max_pixels`, read from the header
before decoding), or two images of different sizes becomes a rejected record with its reason, and
so does any other failure of one line; the run goes on. Pixels of every mode are read as RGB by
`imgdiff.pixels.to_rgb` (16-bit scaled, alpha over white). The images are copied into the run
(lossless), so a run directory is complete on its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from pydantic import Field

from imgdiff.record import KINDS, Edit, Record
from imgdiff.sources.base import BadItem, FileSource, FileSourceSettings, parse_json_line, require_object
from imgdiff.sources.images import MAX_PIXELS, confined_path, decoded, opened

REQUIRED = ("image_a", "image_b")
OPTIONAL = ("caption_a", "caption_b", "edit", "kind")


class PairsSettings(FileSourceSettings):
    """The JSONL file's `path`; what images it may name."""

    max_pixels: int = Field(MAX_PIXELS, ge=1)  # per image (width x height); larger pairs are rejected
    allow_outside_paths: bool = False  # image paths may be absolute or lead out of the file's folder


class PairsSource(FileSource):
    type = "pairs"
    version = 1
    Settings = PairsSettings

    def fingerprint_prefix(self) -> str:
        # Both settings choose which items are admitted, so a change refuses to resume; left out
        # at their defaults, so runs from before they existed keep their ids.
        s, prefix = self.settings, super().fingerprint_prefix()
        if s.max_pixels != MAX_PIXELS:
            prefix += f"max_pixels={s.max_pixels}:"
        return prefix + ("outside_paths:" if s.allow_outside_paths else "")

    def items(self) -> Iterator[str]:
        return self.lines()

    def fill(self, record: Record, line: str) -> None:
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
        s = self.settings
        paths = {
            key: confined_path(self.path.parent, item[key], key, s.allow_outside_paths) for key in REQUIRED
        }
        with contextlib.ExitStack() as stack:
            # Both headers first: sizes are checked before any pixel is decoded.
            a, b = (stack.enter_context(opened(paths[k], k, item[k], s.max_pixels)) for k in REQUIRED)
            if a.size != b.size:
                raise BadItem(
                    f"size_mismatch: image_a is {a.size[0]}x{a.size[1]}, image_b is {b.size[0]}x{b.size[1]}"
                )
            record.artifacts.update(
                a=decoded(a, "image_a", item["image_a"]), b=decoded(b, "image_b", item["image_b"])
            )


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
