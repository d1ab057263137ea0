"""The record: one image pair and everything the stages learnt about it.

Records are plain data. `to_dict` gives the canonical JSON form (field order fixed, no wall-clock
values), `from_dict` reads it back. `artifacts` is transient: a stage puts pixels there (name ->
array or image) and the engine writes them to disk and records the relative paths in `images` / `aux`.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

from imgdiff.reason import Reason

SCHEMA_VERSION = 1

Kind = Literal["replacement", "removal", "distractor", "unknown"]
KINDS = ("replacement", "removal", "distractor", "unknown")


def record_id(source_fingerprint: str, source_index: int) -> str:
    """12 hex characters naming a source item; stable for the same source content and index."""
    return hashlib.sha256(f"{source_fingerprint}:{source_index}".encode()).hexdigest()[:12]


def derive_seed(run_seed: int, rid: str) -> int:
    """A record's seed from the run seed and its id: never from order, time or a global RNG."""
    digest = hashlib.sha256(f"{run_seed}:{rid}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1  # 63 bits: fits torch and numpy seeds


@dataclass
class Edit:
    old: str
    new: str = ""  # empty for a removal


@dataclass
class Region:
    box: list[float]  # [x1, y1, x2, y2] in pixels of image a
    source: str  # "segmenter:<model>" | "diff" | "prior"
    scores: dict[str, float] = field(default_factory=dict)
    captions: dict[str, str] = field(default_factory=dict)  # {"a": ..., "b": ...}
    difference: str | None = None
    rejected_by: str | None = None
    reason: str | None = None


@dataclass
class TruthBox:
    box: list[float]
    role: str = "changed"  # what the box marks, e.g. "changed", "old", "new"


@dataclass
class Record:
    id: str
    source_index: int
    seed: int
    child_index: list[int] = field(default_factory=list)
    kind: Kind = "unknown"
    caption_a: str = ""
    caption_b: str = ""
    edit: Edit | None = None
    images: dict[str, str] = field(default_factory=dict)
    aux: dict[str, str] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    # How the pixels were made, when imgdiff made them: `generate` writes its model, seed and every
    # generation setting here, so a pair can be regenerated or audited from its record alone.
    generation: dict[str, Any] = field(default_factory=dict)
    regions: list[Region] = field(default_factory=list)
    truth: list[TruthBox] = field(default_factory=list)
    status: Literal["kept", "rejected"] = "kept"
    rejected_by: str | None = None
    reason: Reason | None = None  # a str: "<code>: <detail>" in JSON
    schema_version: int = SCHEMA_VERSION
    artifacts: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def kept(self) -> bool:
        return self.status == "kept"

    def reject(self, stage: str, reason: str | Reason) -> None:
        """Mark the record rejected: `Reason(code, detail)`, or text "<code>: <detail>", e.g.
        'missing_file: ...' (read into a Reason here, once)."""
        self.status, self.rejected_by, self.reason = "rejected", stage, Reason.of(reason)

    def child(self, k: int) -> Record:
        """The k-th fan-out child: id `<parent>-<k>`, same source item, a seed of its own."""
        kid_id = f"{self.id}-{k}"
        kid = dataclasses.replace(self, id=kid_id, seed=derive_seed(self.seed, kid_id), artifacts={})
        kid.child_index = [*self.child_index, k]
        for name in ("images", "aux", "scores", "generation"):
            setattr(kid, name, dict(getattr(self, name)))
        kid.regions, kid.truth = copy.deepcopy(self.regions), copy.deepcopy(self.truth)
        kid.edit = copy.deepcopy(self.edit)
        return kid

    def sort_key(self) -> tuple[int, list[int]]:
        """Canonical order: source item first, then fan-out position; ids are never parsed."""
        return (self.source_index, self.child_index)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema_version": self.schema_version}
        for f in dataclasses.fields(self):
            if f.name in ("schema_version", "artifacts"):
                continue
            value = getattr(self, f.name)
            if f.name == "edit":
                value = None if value is None else dataclasses.asdict(value)
            elif f.name in ("regions", "truth"):
                value = [dataclasses.asdict(v) for v in value]
            elif f.name == "scores":
                value = {k: float(v) for k, v in value.items()}
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        data = dict(data)
        version = data.pop("schema_version", SCHEMA_VERSION)
        if version > SCHEMA_VERSION:
            raise ValueError(f"record schema_version {version} is newer than this imgdiff ({SCHEMA_VERSION})")
        if data.get("edit") is not None:
            data["edit"] = Edit(**data["edit"])
        if data.get("reason") is not None:
            data["reason"] = Reason.of(data["reason"])
        data["regions"] = [Region(**r) for r in data.get("regions", [])]
        for region in data["regions"]:
            region.reason = None if region.reason is None else Reason.of(region.reason)
        data["truth"] = [TruthBox(**t) for t in data.get("truth", [])]
        return cls(**data, schema_version=SCHEMA_VERSION)
