"""The predictions file `imgdiff predict` writes and every `imgdiff eval` command reads.

JSON lines: the first line is the header (what was asked of which model: benchmark, task, model
entry, prompt template and sampling), every other line one answered item
`{"id", "answer", "prompt", ...item fields}`. It is appended a batch at a time, in one write
followed by fsync, so a kill loses at most the batch in hand; a last line cut short by the kill is
ignored on reading, as the run store does with part lines. Resuming needs the same header: answers
asked differently are not mixed in one file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imgdiff.errors import UsageError

FORMAT_KEY = "imgdiff_predictions"
FORMAT_VERSION = 1


@dataclass
class Predictions:
    header: dict[str, Any]
    items: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> its line, the latest wins

    def answers(self) -> dict[str, str]:
        return {item_id: str(line.get("answer", "")) for item_id, line in self.items.items()}


def is_predictions_file(path: Path) -> bool:
    """Whether `path` starts with a predictions header (cheap: reads the first line only)."""
    try:
        with path.open(encoding="utf-8") as handle:
            first = json.loads(handle.readline())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(first, dict) and FORMAT_KEY in first


def read_predictions(path: Path) -> Predictions:
    """The header and the answered items; a malformed last line (a kill mid-write) is skipped."""
    if not path.is_file():
        raise UsageError(f"predictions file '{path}' not found")
    lines = path.read_text(encoding="utf-8").splitlines()
    parsed: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            if number == len(lines):
                break  # cut short by a kill: that batch is asked again
            raise UsageError(f"{path}:{number}: not JSON") from None
        if not isinstance(value, dict):
            raise UsageError(f"{path}:{number}: expected a JSON object")
        parsed.append(value)
    if not parsed or FORMAT_KEY not in parsed[0]:
        raise UsageError(f"'{path}' is not an imgdiff predictions file (no header line)")
    if parsed[0][FORMAT_KEY] > FORMAT_VERSION:
        raise UsageError(f"'{path}' has predictions format {parsed[0][FORMAT_KEY]}; this imgdiff reads 1")
    result = Predictions(header=parsed[0])
    for line in parsed[1:]:
        if "id" not in line:
            raise UsageError(f"{path}: an answer line has no id")
        result.items[str(line["id"])] = line
    return result


class PredictionsWriter:
    """Appends answered batches to a predictions file (header first when the file is new)."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            self._drop_partial_line()
        fresh = not path.exists() or path.stat().st_size == 0
        self._handle = path.open("ab")
        if fresh:
            self._write([{FORMAT_KEY: FORMAT_VERSION, **header}])

    def append(self, lines: list[dict[str, Any]]) -> None:
        self._write(lines)

    def _write(self, lines: list[dict[str, Any]]) -> None:
        data = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
        self._handle.write(data.encode("utf-8"))
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def _drop_partial_line(self) -> None:
        """A kill mid-write leaves a last line without its newline: cut it off, so the next batch
        starts on a line of its own (its items are asked again)."""
        data = self.path.read_bytes()
        if data.endswith(b"\n"):
            return
        with self.path.open("r+b") as handle:
            handle.truncate(data.rfind(b"\n") + 1)

    def close(self) -> None:
        self._handle.close()
