"""The source interface: where records come from.

`items()` yields cheap raw items in a fixed order (a JSONL line, a caption, a scene index); the
engine numbers them, applies `--limit` and `--shard`, makes each item's record (id, seed), and calls
`load()` on a batch, which fills the record and puts its pixels in `artifacts`, or rejects it with a
reason. `fingerprint()` changes when the items would change; a run refuses to resume across it.

Items are isolated: a source implements `fill(record, item)` for one item, and `load_one` turns
anything that item raises into a rejected record (`BadItem` keeps its reason; any other exception,
say a RecursionError from a JSON line nested 100,000 deep, becomes `malformed_item: ...`), so one
bad item never stops a run. `load` is `load_one` over the batch.

`FileSource` is the base of the sources that read one file the user names (`pairs`, `captions`),
with the helpers they share for reading its lines and JSON items.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from pydantic import field_validator

from imgdiff.errors import UsageError
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

    def fill(self, record: Record, item: Any) -> None:
        """Fill one record from its raw item (captions, pixels in `artifacts`), or raise BadItem."""
        raise NotImplementedError

    def load(self, batch: list[tuple[Record, Any]]) -> list[Record]:
        return [self.load_one(record, item) for record, item in batch]

    def load_one(self, record: Record, item: Any) -> Record:
        """The record filled from its item, or rejected by `source` with the reason; never raises
        for a bad item (only for KeyboardInterrupt and other non-`Exception`s)."""
        try:
            self.fill(record, item)
        except BadItem as exc:
            reject_item(record, str(exc))
        except Exception as exc:  # one item's failure, whatever it is, must not stop the run
            reject_item(record, f"malformed_item: {one_line(exc)}")
        return record


def reject_item(record: Record, reason: str) -> None:
    """Reject a record at the source, dropping whatever a failed fill left in its artifacts."""
    record.artifacts.clear()
    record.reject("source", reason)


def one_line(exc: BaseException, limit: int = 200) -> str:
    """`Type: first line of the message`, cut at `limit` characters (a reason, not a report)."""
    lines = str(exc).strip().splitlines()
    text = " ".join(f"{type(exc).__name__}: {lines[0]}".split()) if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


class FileSourceSettings(SourceSettings):
    path: str  # made absolute when the recipe is loaded, so run.json stays valid from anywhere

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        return str(Path(value).expanduser().absolute())


class FileSource(Source):
    """A source whose items come from one file, `settings.path`. Its fingerprint hashes the file's
    content after `fingerprint_prefix()`: where the file lies does not change the items."""

    Settings: ClassVar[type[SourceSettings]] = FileSourceSettings
    settings: FileSourceSettings

    @property
    def path(self) -> Path:
        return Path(self.settings.path)

    def check(self) -> None:
        if not self.path.is_file():
            raise UsageError(f"source.path: {self.type} file '{self.path}' not found")

    def fingerprint_prefix(self) -> str:
        """What besides the file's content defines the items: the type, its version and, in a
        subclass, the settings that select items."""
        return f"{self.type}:v{self.version}:"

    def fingerprint(self) -> str:
        digest = hashlib.sha256(self.fingerprint_prefix().encode())
        with self.path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()[:16]

    def count(self) -> int:
        return sum(1 for _ in self.items())

    def lines(self) -> Iterator[str]:
        """The file's non-blank lines, stripped; bytes that are not UTF-8 become U+FFFD (a bad line
        is then a bad item, not a crash)."""
        with self.path.open("rb") as handle:
            for raw in handle:
                line = raw.decode("utf-8", errors="replace").strip()
                if line:
                    yield line


def parse_json_line(line: str) -> Any:
    """The value of one JSONL line, or BadItem("malformed_json: ...")."""
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise BadItem(f"malformed_json: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise BadItem("malformed_json: nested too deeply") from None


def require_object(item: Any) -> dict[str, Any]:
    """The item if it is a JSON object, else BadItem("malformed_item: ...")."""
    if not isinstance(item, dict):
        raise BadItem(f"malformed_item: expected a JSON object, got {type(item).__name__}")
    return item
