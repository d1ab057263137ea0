"""Typed, strict settings for stages, sources and model entries, and how they are validated.

Every settings class forbids unknown keys and checks types. A model-naming setting is declared with
`model_ref(role)`; a decision setting (a threshold, cap or rule) is one whose name ends in
`_min`, `_max`, `_gt` or `_lt`, or which the class lists in `DECISIONS`. Decision settings are left
out of fingerprints: changing one re-applies decisions from stored scores.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imgdiff.errors import UsageError, did_you_mean

THRESHOLD_SUFFIXES = ("_min", "_max", "_gt", "_lt")


class Settings(BaseModel):
    """Base of every settings class: strict, immutable, picklable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

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
        raise UsageError(f"{where}{loc}: {message}, got {_shown(err.get('input'))}") from None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
