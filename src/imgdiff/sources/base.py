"""The source interface: where records come from.

`items()` yields cheap raw items in a fixed order (a JSONL line, a caption, a scene index); the
engine numbers them, applies `--limit` and `--shard`, makes each item's record (id, seed), and calls
`load()` on a batch, which fills the record and puts its pixels in `artifacts`, or rejects it with a
reason. `fingerprint()` changes when the items would change; a run refuses to resume across it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from imgdiff.record import Record
from imgdiff.settings import Settings


class BadItem(Exception):
    """An item that becomes a rejected record (rejected_by "source"); the message starts with the
    reason code, e.g. "missing_file: image_a 'x.png' not found"."""


class SourceSettings(Settings):
    pass


class Source:
    type: ClassVar[str]
    version: ClassVar[int] = 1
    Settings: ClassVar[type[SourceSettings]] = SourceSettings

    def __init__(self, settings: SourceSettings) -> None:
        self.settings = settings

    def check(self) -> None:
        """Fail fast (UsageError) when the source cannot be read at all."""

    def fingerprint(self) -> str:
        raise NotImplementedError

    def count(self) -> int | None:
        """How many items there are, when cheap to know (for progress bars)."""
        return None

    def items(self) -> Iterator[Any]:
        raise NotImplementedError

    def load(self, batch: list[tuple[Record, Any]]) -> list[Record]:
        raise NotImplementedError
