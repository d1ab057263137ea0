"""From a recipe to the steps an engine runs: fingerprints and groups.

A step is the source (step 0) or a stage. Its fingerprint covers what defines its outputs and
scores: for a stage, its name, method, version, score-defining settings, the model entries it
names and the upstream fingerprint; decision settings are left out. Equal fingerprint, equal
output: the engine reuses a stored part line only when its fingerprint matches.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from imgdiff.recipe import Recipe, StageSpec


def digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def stage_fingerprint(spec: StageSpec, recipe: Recipe, upstream: str) -> str:
    settings = spec.settings.score_defining()
    settings.pop("preset")  # the preset only fills values; the values are what count
    return digest(
        {
            "stage": spec.name,
            "method": spec.method,
            "version": spec.cls.version,
            "settings": settings,
            "models": {key: recipe.models[name].fingerprint_fields() for key, name in spec.models().items()},
            "upstream": upstream,
        }
    )


@dataclass(frozen=True)
class Bounds:
    """One span of the run's steps: `first..last` (0 is the source step), their stage names and the
    model entries they name."""

    first: int
    last: int
    stages: tuple[str, ...] = ()
    models: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        return "+".join(self.stages) or "source"


@dataclass(frozen=True)
class Plan:
    recipe: Recipe
    source_fingerprint: str  # the items' identity: a change refuses to resume
    fingerprints: dict[str, str]  # step name ("source", then each stage) -> fingerprint

    @classmethod
    def make(cls, recipe: Recipe, source_fingerprint: str) -> Plan:
        # The source step writes the images, so their format is part of its output.
        upstream = digest({"source": source_fingerprint, "image_format": recipe.run.image_format})
        fps = {"source": upstream}
        for spec in recipe.stages:
            upstream = fps[spec.name] = stage_fingerprint(spec, recipe, upstream)
        return cls(recipe, source_fingerprint, fps)

    def groups(self) -> list[list[StageSpec]]:
        """Consecutive stages that share models run together (one actor pool under Ray).

        A new group starts where a stage uses models and the group so far uses models but none
        of the same: by default `edit`, `generate`, and `pair_filter + regions + describe`.
        Weight-free stages join their neighbours."""
        groups: list[list[StageSpec]] = []
        used: set[str] = set()
        for spec in self.recipe.stages:
            names = set(spec.models().values())
            if groups and not (names and used and not names & used):
                groups[-1].append(spec)
                used |= names
            else:
                groups.append([spec])
                used = set(names)
        return groups

    def spans(self) -> list[Bounds]:
        """The units of work of the Ray engine and of models per group: the source step, then each
        of `groups()`."""
        spans = [Bounds(0, 0)]
        for group in self.groups():
            first = spans[-1].last + 1
            models = frozenset(name for spec in group for name in spec.models().values())
            spans.append(Bounds(first, first + len(group) - 1, tuple(s.name for s in group), models))
        return spans
