"""Source `captions`: image captions for the `edit` stage to rewrite, read from one file.

    source: {type: captions, path: captions_train2017.json, per_image: 1}

The format goes by the file's suffix:
- `.json`: COCO captions (`{"annotations": [{"image_id": ..., "caption": ...}, ...]}`) or a list of
  `{"image_id": ..., "caption": ...}` objects (`image_id` optional);
- `.jsonl`: one such object per line;
- `.txt`: one caption per line.
Blank lines are not items; keys other than `caption` and `image_id` are ignored (COCO has `id`).

`per_image` keeps the first N captions of each image id, in file order. The default 1 follows the
paper, whose 118K pairs match one caption for each of COCO's 118K train images: an image's five
captions describe one scene, so more of them mostly repeat the same edit. `null` keeps every caption.
An item without an image id counts as an image of its own.

Each item becomes a record whose `caption_a` is the caption after hygiene (NFKC, control characters
and whitespace runs to one space, wrapping quotes stripped); its kind stays `unknown` until `edit`
makes it a replacement, and it has no pixels (`generate` makes them). A bad item is a record
rejected by `source` with its reason (`malformed_json`, `malformed_item`, `missing_key`, `not_text`,
`empty_caption`) and the run goes on; a file that cannot be read at all stops the run (exit 2).
The fingerprint hashes the file's content, `per_image` and the version, not the file's location.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pydantic import Field

from imgdiff.errors import UsageError
from imgdiff.language.text import BadCaption, clean_caption
from imgdiff.record import Record
from imgdiff.sources.base import BadItem, FileSource, FileSourceSettings, parse_json_line, require_object

SUFFIXES = (".json", ".jsonl", ".txt")


class CaptionsSettings(FileSourceSettings):
    per_image: int | None = Field(default=1, ge=1)  # captions kept per image id; None: all


@dataclass(frozen=True)
class Unreadable:
    """An item that is already known to be bad (a JSONL line that does not parse)."""

    reason: str


class CaptionsSource(FileSource):
    type = "captions"
    version = 1
    Settings = CaptionsSettings
    settings: CaptionsSettings

    def check(self) -> None:
        super().check()
        if self.path.suffix.lower() not in SUFFIXES:
            raise UsageError(
                f"source.path: captions file '{self.path.name}' must end in {', '.join(SUFFIXES)}"
            )
        if self.path.suffix.lower() == ".json":
            _ = self._json_items

    def fingerprint_prefix(self) -> str:
        return f"{super().fingerprint_prefix()}per_image={self.settings.per_image}:"

    def items(self) -> Iterator[Any]:
        per_image, seen = self.settings.per_image, Counter[Any]()
        for item in self._raw_items():
            image = item.get("image_id") if isinstance(item, dict) else None
            if per_image is not None and isinstance(image, (int, str)) and not isinstance(image, bool):
                seen[image] += 1
                if seen[image] > per_image:
                    continue
            yield item

    def fill(self, record: Record, item: Any) -> None:
        record.caption_a = caption_of(item)

    def _raw_items(self) -> Iterator[Any]:
        suffix = self.path.suffix.lower()
        if suffix == ".json":
            yield from self._json_items
            return
        for line in self.lines():
            if suffix == ".txt":
                yield {"caption": line}
                continue
            try:
                yield parse_json_line(line)
            except BadItem as exc:
                yield Unreadable(str(exc))

    @cached_property
    def _json_items(self) -> list[Any]:
        """The items of a `.json` file, parsed once: check, count and items all need them."""
        try:
            data = json.loads(self.path.read_bytes())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"source.path: '{self.path.name}' is not valid JSON: {exc}") from None
        except RecursionError:
            raise UsageError(f"source.path: '{self.path.name}' is nested too deeply") from None
        if isinstance(data, dict) and isinstance(data.get("annotations"), list):
            return data["annotations"]
        if isinstance(data, list):
            return data
        raise UsageError(
            f"source.path: '{self.path.name}' is neither COCO captions "
            '({"annotations": [...]}) nor a list of {"caption": ...} objects'
        )


def caption_of(item: Any) -> str:
    """The clean caption of a raw item, or BadItem with the reason."""
    if isinstance(item, Unreadable):
        raise BadItem(item.reason)
    item = require_object(item)
    if "caption" not in item:
        raise BadItem("missing_key: 'caption'")
    try:
        return clean_caption(item["caption"])
    except BadCaption as exc:
        raise BadItem(str(exc)) from None
