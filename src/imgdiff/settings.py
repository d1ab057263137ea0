"""Typed, strict settings for stages, sources and model entries, and how they are validated.

Every settings class forbids unknown keys and checks types. A model-naming setting is declared with
`model_ref(role)`; a decision setting (a threshold, cap or rule) is one whose name ends in
`_min`, `_max`, `_gt` or `_lt`, or which the class lists in `DECISIONS`. Decision settings are left
out of fingerprints: changing one re-applies decisions from stored scores.

Settings are also checked against their meaning, wherever they come from (a recipe, `--set`,
`rethreshold`, Python): numbers are finite; a threshold lies inside the range of its score (the
class's `SCORES` table, which documents each score); and for every name with both a lower bound
(`_min`/`_gt`) and an upper one (`_max`/`_lt`), the lower one is not above the upper one. Sizes,
kernels and caps carry their own `Field` constraints in each class.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from imgdiff.errors import UsageError, did_you_mean

THRESHOLD_SUFFIXES = ("_min", "_max", "_gt", "_lt")
_LOWER, _UPPER = ("_min", "_gt"), ("_max", "_lt")


class Settings(BaseModel):
    """Base of every settings class: strict, immutable, picklable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    # score name -> (lowest, highest) value the stage can write; a threshold on the score must lie
    # inside it (a threshold outside always or never passes: a typo, not a choice).
    SCORES: ClassVar[dict[str, tuple[float, float]]] = {}
    DECISIONS: ClassVar[frozenset[str]] = frozenset()
    # Settings that change how fast, not what: batch shapes such as `pairs_per_call`. They stay out
    # of fingerprints, so changing one never redoes finished work (model outputs agree within float
    # tolerance across batch compositions; DESIGN.md "Determinism").
    RUNTIME: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def decision_fields(cls) -> set[str]:
        names = set(cls.model_fields)
        return {n for n in names if n.endswith(THRESHOLD_SUFFIXES)} | (cls.DECISIONS & names)

    @classmethod
    def model_fields_by_role(cls) -> dict[str, str]:
        """{setting name: model role} for the settings that name a `models:` entry."""
        out = {}
        for name, info in cls.model_fields.items():
            extra = info.json_schema_extra
            if isinstance(extra, dict) and "model_role" in extra:
                out[name] = str(extra["model_role"])
        return out

    @model_validator(mode="after")
    def _meaningful(self) -> Settings:
        set_bounds = {
            name: value
            for name in type(self).model_fields
            if name.endswith(THRESHOLD_SUFFIXES) and isinstance(value := getattr(self, name), int | float)
        }
        for name, value in set_bounds.items():
            score = name.rsplit("_", 1)[0]
            low, high = self.SCORES.get(score, (-math.inf, math.inf))
            if not low <= value <= high:
                raise ValueError(
                    f"{name}: must lie in [{low:g}, {high:g}], the range of {score}, got {value:g}"
                )
        for lower, low in set_bounds.items():
            if not lower.endswith(_LOWER):
                continue
            stem = lower.rsplit("_", 1)[0]
            for upper in (stem + suffix for suffix in _UPPER):
                high = set_bounds.get(upper)
                strict = not (lower.endswith("_min") and upper.endswith("_max"))
                if high is not None and (low > high or (strict and low == high)):
                    word = "at least" if not strict else "above"
                    raise ValueError(f"{upper}: must be {word} {lower} ({low:g}), got {high:g}")
        return self

    def score_defining(self) -> dict[str, Any]:
        """The settings that define outputs and scores (everything but decisions and runtime knobs)."""
        return self.model_dump(mode="json", exclude=self.decision_fields() | set(self.RUNTIME))


def model_ref(role: str, required: bool = True) -> Any:
    """Declare a setting that names a `models:` entry of the given role (None: not used)."""
    if required:
        return Field(json_schema_extra={"model_role": role})
    return Field(default=None, json_schema_extra={"model_role": role})


def validate(cls: type[Settings], data: dict[str, Any], where: str) -> Settings:
    """Build `cls` from `data`, turning the first problem into a one-line UsageError."""
    if not isinstance(data, dict):
        raise UsageError(f"{where}: expected a mapping of settings, got {_shown(data)}")
    for key in data:
        if key not in cls.model_fields:
            raise UsageError(f"{where}: unknown setting '{key}'{did_you_mean(str(key), cls.model_fields)}")
    try:
        return cls(**data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = "".join(f".{p}" for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        if not err["loc"]:  # a rule across settings: the message starts with the one it blames
            named = message.split(":", 1)[0] in cls.model_fields
            raise UsageError(f"{where}.{message}" if named else f"{where}: {message}") from None
        raise UsageError(f"{where}{loc}: {message}, got {_shown(err.get('input'))}") from None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
