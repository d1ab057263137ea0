"""What llava and sharegpt share: one entry per sample, in one JSON list per split (`data.json`
without --split, else `<split>.json`), written while the samples stream in.

`JsonList` appends entries to an open file and closes the list at the end; the bytes are those of
`to_json(entries)` (`json.dumps(..., indent=2)`), with no list held in memory. A format says only
how an entry looks (`entry`) and what its card says (`finish`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from imgdiff.export.base import Exporter
from imgdiff.export.samples import Sample


class JsonList:
    def __init__(self, path: Path) -> None:
        self.handle = path.open("w", encoding="utf-8")
        self.length = 0

    def append(self, item: Any) -> None:
        text = json.dumps(item, indent=2, ensure_ascii=False)
        # an item's lines one level deeper, as json.dumps lays out a list (a string holds no newline)
        self.handle.write(("[\n" if self.length == 0 else ",\n") + "  " + text.replace("\n", "\n  "))
        self.length += 1

    def close(self) -> None:
        self.handle.write("\n]\n" if self.length else "[]\n")
        self.handle.close()


class JsonListExporter(Exporter):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        split = self.context.options.split is not None
        self.files = {name: f"{name}.json" if split else "data.json" for name in self.context.split_names}
        self.lists = {name: JsonList(self.to / rel) for name, rel in self.files.items()}
        self.example: dict[str, Any] | None = None

    def entry(self, sample: Sample, image: str) -> dict[str, Any]:
        """The sample's entry; `image` is its picture's path relative to the folder."""
        raise NotImplementedError

    def add(self, sample: Sample, split: str, picture: bytes) -> None:
        entry = self.entry(sample, self.write_picture(sample, picture))
        self.lists[split].append(entry)
        self.example = self.example or entry

    def close_lists(self) -> int:
        """Close every list; the number of entries written."""
        for entries in self.lists.values():
            entries.close()
        return sum(entries.length for entries in self.lists.values())
