"""Source `synthetic`: procedural 2D scenes with one known edit, and exact ground truth.

Each item is a scene of `objects_min`-`objects_max` objects (14 classes x 8 named colours x 3 sizes)
on a textured background, with soft shadows and Gaussian noise, and a copy in which one object is
replaced or removed, or (a `distractor`) only the photometry changed. Everything about item i comes
from `np.random.default_rng(record.seed)`, so pixels do not depend on batching, sharding or order.

Truth, as the evaluation defines it: `truth_a` is the changed object's visible pixels in a (not
covered by objects in front; shadows are not the object), `truth_b` the new object's in b (all False
for a removal), and the one `TruthBox(role="changed")` is the box of their union, x2 and y2
exclusive. The masks go out as the `masks` artifact (`<id>_masks.npz`); distractors have neither.
See `pair.py` for the shares and the fixed difficulty, `scene.py` for objects and shadows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import numpy as np

from imgdiff.errors import UsageError
from imgdiff.record import Edit, Record, TruthBox
from imgdiff.sources.base import BadItem, Source, SourceSettings
from imgdiff.sources.synthetic.pair import Unsatisfiable, make_pair


class SyntheticSettings(SourceSettings):
    count: int = 1000  # how many items
    size: int = 512  # image side, pixels
    distractor_share: float = 0.15  # pairs with a global photometric change only
    removal_share: float = 0.35  # of the edits; the rest are replacements
    occluded_share: float = 0.25  # of the edits: the target is put partly behind another object
    same_colour_share: float = 0.3  # of the replacements: same colour, another class
    min_area: float = 0.01  # the changed object's visible pixels, share of the image
    objects_min: int = 3
    objects_max: int = 8
    noise_min: float = 2.0  # Gaussian noise sigma range, 0-255 scale
    noise_max: float = 6.0


class SyntheticSource(Source):
    type = "synthetic"
    version = 1
    Settings = SyntheticSettings

    def check(self) -> None:
        s = self.settings
        rules = [
            ("count", s.count >= 0, "must be 0 or more"),
            ("size", 64 <= s.size <= 4096, "must be between 64 and 4096"),
            ("min_area", 0.0 <= s.min_area <= 0.03, "must be between 0 and 0.03"),
            ("objects_min", 1 <= s.objects_min <= 12, "must be between 1 and 12"),
            ("objects_max", s.objects_min <= s.objects_max <= 12, "must be between objects_min and 12"),
            ("noise_min", s.noise_min >= 0.0, "must be 0 or more"),
            ("noise_max", s.noise_min <= s.noise_max <= 50.0, "must be between noise_min and 50"),
        ]
        rules += [
            (name, 0.0 <= getattr(s, name) <= 1.0, "must be between 0 and 1")
            for name in ("distractor_share", "removal_share", "occluded_share", "same_colour_share")
        ]
        if s.occluded_share > 0 and s.objects_max < 2:
            rules.append(("occluded_share", False, "needs objects_max >= 2 (an object to hide behind)"))
        for name, ok, rule in rules:
            if not ok:
                raise UsageError(f"source.{name}: {rule}, got {getattr(s, name)!r}")

    def fingerprint(self) -> str:
        # Item i does not depend on `count`, so a larger count extends a run, like --limit.
        settings = json.dumps(self.settings.model_dump(mode="json", exclude={"count"}), sort_keys=True)
        return hashlib.sha256(f"{self.type}:v{self.version}:{settings}".encode()).hexdigest()[:16]

    def count(self) -> int:
        return self.settings.count

    def items(self) -> Iterator[int]:
        yield from range(self.settings.count)

    def fill(self, record: Record, item: int) -> None:
        try:
            fill(record, self.settings)
        except Unsatisfiable as exc:
            raise BadItem(f"unsatisfiable: {exc}") from None


def fill(record: Record, settings: SyntheticSettings) -> None:
    """Draw the record's pair from its own seed and put captions, truth and pixels on it."""
    pair = make_pair(np.random.default_rng(record.seed), settings)
    record.kind = pair.kind  # type: ignore[assignment]
    record.caption_a, record.caption_b = pair.caption_a, pair.caption_b
    record.edit = Edit(*pair.edit) if pair.edit else None
    record.artifacts.update(a=pair.a, b=pair.b)
    if pair.box is not None:
        record.truth = [TruthBox(box=[float(v) for v in pair.box], role="changed")]
        record.artifacts["masks"] = {"truth_a": pair.truth_a, "truth_b": pair.truth_b}
