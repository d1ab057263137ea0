"""The stage interface: settings stored in `__init__`, models in `setup`, a batch in `__call__`.

Scoring and deciding are separate. `__call__` computes scores (and may reject a record it cannot
process, e.g. a corrupt input); the engine stores that output, then calls `decide`, which applies
the threshold settings to the stored scores. `imgdiff rethreshold` calls only `decide`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from imgdiff.errors import UsageError, did_you_mean
from imgdiff.reason import Reason
from imgdiff.record import Record
from imgdiff.settings import Settings

if TYPE_CHECKING:
    from imgdiff.models import ModelPool
    from imgdiff.store import ImageLoader


class StageSettings(Settings):
    preset: str = "paper"


class Stage:
    name: ClassVar[str]  # the recipe's stage name, e.g. "pair_filter"
    method: ClassVar[str]  # the implementation, e.g. "pixel"
    version: ClassVar[int] = 1  # bump when outputs change for the same settings
    Settings: ClassVar[type[StageSettings]] = StageSettings
    # preset name -> default settings; each preset says where its numbers come from
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"paper": {}}
    # A columnar side table (stages/<name>/<SIDE_TABLE>.parquet), e.g. every candidate box with its
    # scores and whether the decision kept it; rows come from `side_rows`.
    SIDE_TABLE: ClassVar[str | None] = None

    def __init__(self, settings: StageSettings) -> None:
        self.settings = settings

    def setup(self, models: ModelPool, images: ImageLoader) -> None:
        """Load what the stage needs; called once per worker before the first batch."""
        self.images = images

    def __call__(self, records: list[Record]) -> list[Record]:
        """Score a batch. Return the records (a fan-out stage returns children via Record.child)."""
        raise NotImplementedError

    def decide(self, record: Record) -> None:
        """Apply the threshold settings to the record's stored scores; reject with the reason."""
        reason = self.failed_threshold(record.scores, prefix=f"{self.name}.")
        if reason is not None:
            record.reject(self.name, reason)

    def incomplete(self, record: Record) -> bool:
        """Whether the current decision reaches work that this stored output lacks (a box a
        rethreshold admitted, say). The engine then calls the stage on the stored output, which
        computes just that work; stages that decide whole records never have any."""
        return False

    def rebase(self, stored: list[Record], record: Record, images: ImageLoader) -> list[Record] | None:
        """Outputs for `record` from `stored`, the outputs computed when the input was different
        (an upstream decision has since kept other boxes): per-box work reused for the boxes that
        are still there. None (the default) when the stage cannot: it computes the record again
        (`run`) or leaves it pending (`rethreshold`). Never a model call: this runs in
        `rethreshold`, which sets up no stage."""
        return None

    def failed_threshold(self, scores: dict[str, float], prefix: str = "") -> Reason | None:
        """The first set `<score>_min|max|gt|lt` threshold that `scores[prefix + score]` fails, as
        a reason (code "changed_area_min", detail "changed_area 0 < 0.002"); None when all pass.
        Stages that decide per region call it on a region's scores (no prefix)."""
        for setting, limit in self.thresholds():
            score, bound = setting.rsplit("_", 1)
            value = scores.get(prefix + score)
            if value is None:
                return Reason(setting, f"score {score} missing")
            failed = {"min": value < limit, "max": value > limit, "gt": value <= limit, "lt": value >= limit}
            if failed[bound]:
                sign = {"min": "<", "max": ">", "gt": "<=", "lt": ">="}[bound]
                return Reason(setting, f"{score} {value:.4g} {sign} {limit:g}")
        return None

    def side_rows(self, scored: Record, decided: Record) -> list[dict[str, Any]]:
        """Side-table rows for one record: `scored` as `__call__` left it, `decided` after `decide`."""
        return []

    def thresholds(self) -> list[tuple[str, float]]:
        """The `<score>_min|max|gt|lt` settings that are set, in declaration order."""
        out = []
        for name in self.Settings.model_fields:
            value = getattr(self.settings, name)
            if name.endswith(("_min", "_max", "_gt", "_lt")) and value is not None:
                out.append((name, float(value)))
        return out

    @classmethod
    def resolve_settings(cls, given: dict[str, Any], where: str) -> StageSettings:
        """Preset defaults first, then the explicit settings; strict validation of both."""
        from imgdiff.settings import validate

        preset = given.get("preset", "paper")
        if preset not in cls.PRESETS:
            raise UsageError(
                f"{where}.preset: unknown preset '{preset}' for {cls.name} method "
                f"{cls.method}{did_you_mean(str(preset), cls.PRESETS)}"
            )
        return validate(cls.Settings, {**cls.PRESETS[preset], **given}, where)  # type: ignore[return-value]
