"""docs/ARCHITECTURE.md's preset numbers match each stage's `PRESETS`.

The preset table between the `presets:begin` / `presets:end` markers is generated from the stage
registry (`python tests/test_docs_presets.py` rewrites it); the test fails when it is stale. Prose
that quotes a preset number as `` `<setting> <number>` `` is checked too: the number must be that
setting's value in some stage's preset.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from imgdiff.stages import STAGES

DOC = Path(__file__).resolve().parents[1] / "docs" / "ARCHITECTURE.md"
BEGIN = "<!-- presets:begin: generated from each stage's PRESETS by tests/test_docs_presets.py -->"
END = "<!-- presets:end -->"


def _value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def preset_table() -> str:
    rows = ["| stage/method | preset | settings it fills |", "|---|---|---|"]
    for name, methods in STAGES.items():
        for method, cls in methods.items():
            for preset, values in cls.PRESETS.items():
                filled = ", ".join(f"`{k} {_value(v)}`" for k, v in values.items()) or "(the defaults)"
                rows.append(f"| `{name}`/`{method}` | `{preset}` | {filled} |")
    return "\n".join([BEGIN, *rows, END])


def _block(text: str) -> str:
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[start:end]


def test_the_docs_preset_table_is_generated_from_presets() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert BEGIN in text and END in text, f"{DOC} lost its preset table markers"
    assert _block(text) == preset_table(), "stale preset table: run `python tests/test_docs_presets.py`"


def test_preset_numbers_quoted_in_the_prose_are_true() -> None:
    values: dict[str, set[float]] = {}
    for methods in STAGES.values():
        for cls in methods.values():
            for preset in cls.PRESETS.values():
                for key, value in preset.items():
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        values.setdefault(key, set()).add(float(value))
    text = DOC.read_text(encoding="utf-8")
    prose = text.replace(_block(text), "")
    quoted = re.findall(r"`([a-z_]+) ([0-9]+(?:\.[0-9]+)?)`", prose)
    assert any(key in values for key, _ in quoted), "the prose quotes no preset number any more"
    wrong = [
        f"{key} {number}" for key, number in quoted if key in values and float(number) not in values[key]
    ]
    assert not wrong, f"{DOC.name} quotes preset numbers no stage has: {wrong}"


if __name__ == "__main__":  # rewrite the table in place
    text = DOC.read_text(encoding="utf-8")
    DOC.write_text(text.replace(_block(text), preset_table()), encoding="utf-8")
    sys.exit(0)
