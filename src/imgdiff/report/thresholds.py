"""Which threshold lines to draw on a score's histogram: the decision settings of the run's recipe.

A stage's thresholds are settings named after the score, `<score>_min/_max/_gt/_lt` (see
ARCHITECTURE.md, Scores): `pair_filter.changed_area_min` bounds the record score
`pair_filter.changed_area`. Box scores and side-table columns carry no stage prefix, so every stage
whose settings bound a score of that name contributes its line, labelled with the stage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_SETTING = re.compile(r"^(?P<score>.+)_(?P<op>min|max|gt|lt)$")


@dataclass(frozen=True)
class Threshold:
    stage: str
    score: str
    op: str  # min | max | gt | lt
    value: float

    @property
    def label(self) -> str:
        return f"{self.stage}.{self.score}_{self.op} = {self.value:g}"


def recipe_thresholds(recipe: dict[str, Any]) -> list[Threshold]:
    """Every numeric threshold setting of the resolved recipe that run.json holds."""
    found = []
    for entry in recipe.get("stages", []) or []:
        if not isinstance(entry, dict):
            continue
        for stage, settings in entry.items():
            for key, value in (settings or {}).items():
                match = _SETTING.match(str(key))
                if match and isinstance(value, int | float) and not isinstance(value, bool):
                    found.append(Threshold(stage, match["score"], match["op"], float(value)))
    return found


def for_record_score(thresholds: list[Threshold], name: str) -> list[Threshold]:
    """Lines for a record score `<stage>.<score>`: that stage's bounds on that score."""
    stage, _, score = name.partition(".")
    return [t for t in thresholds if t.stage == stage and t.score == score]


def for_unprefixed(
    thresholds: list[Threshold], score: str, stages: set[str] | None = None
) -> list[Threshold]:
    """Lines for a box score or side-table column: any stage's (or the given stages') bounds on it."""
    return [t for t in thresholds if t.score == score and (stages is None or t.stage in stages)]
