"""The steps of a run, as typed objects: the source step, then one step per stage.

A step has a name, a fingerprint and `compute(records, raws)`, which returns the step's raw output
(scores, fan-out children, rejections it cannot avoid); `decide(record)` applies its decision to an
output and `side_rows(scored, decided)` gives its side-table rows; `rebase(stored, record)` re-bases
stored outputs on an input that changed since (None: compute again). Both step kinds are plain objects
that pickle, so an engine can send them to a worker.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from imgdiff.errors import UsageError
from imgdiff.reason import Reason
from imgdiff.record import Record
from imgdiff.sources.base import Source, one_line
from imgdiff.stages.base import Stage
from imgdiff.store import ImageLoader

if TYPE_CHECKING:
    from imgdiff.models import ModelPool

log = logging.getLogger("imgdiff")


class Mode(Enum):
    """What the batch function does with inputs that have no stored output."""

    COMPUTE = "compute"  # compute them (`imgdiff run`)
    DECIDE_ONLY = "decide-only"  # leave them pending (`rethreshold`, `status`, `--dry-run`)


@dataclass
class SourceStep:
    """Step 0: turns each selected item into its record (pixels in `artifacts`)."""

    fingerprint: str
    source: Source
    name: str = "source"
    side_table: None = None

    def compute(self, records: list[Record], raws: Mapping[str, Any]) -> list[Record]:
        """The batch loaded; when loading it raises, each item alone, so that an item the source
        cannot read (any exception: a 100,000-deep JSON line, a garbage mask) becomes a rejected
        record `malformed_item: ...` and the run goes on. A UsageError (the source as a whole is
        unreadable) still stops the run."""
        pristine = [r.to_dict() for r in records]  # load fills records in place
        try:
            return self.source.load([(r, raws[r.id]) for r in records])
        except UsageError:
            raise
        except Exception:  # noqa: BLE001 - isolate the item at fault, below
            log.debug("source batch failed; loading its %d items one by one", len(records), exc_info=True)
        return [out for data in pristine for out in self._load_one(data, raws)]

    def _load_one(self, data: dict[str, Any], raws: Mapping[str, Any]) -> list[Record]:
        record = Record.from_dict(data)
        try:
            return self.source.load([(record, raws[record.id])])
        except UsageError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of one item rejects that item
            log.debug("source item %d (%s) failed", record.source_index, record.id, exc_info=True)
            bare = Record.from_dict(data)  # as it was before the failed load
            bare.reject(self.name, Reason("malformed_item", one_line(exc)))
            return [bare]

    def decide(self, record: Record) -> None:
        """The source has no decision: what it could not load it rejected while loading."""

    def incomplete(self, record: Record) -> bool:
        return False

    def rebase(self, stored: list[Record], record: Record) -> list[Record] | None:
        return None  # the source's input is the item's bare record: it changes only with the source

    def side_rows(self, scored: Record, decided: Record) -> list[dict[str, Any]]:
        return []


@dataclass
class StageStep:
    """A recipe stage. Its models load when it first has work: a resumed run whose work is done
    loads none."""

    name: str
    fingerprint: str
    stage: Stage
    models: ModelPool | None  # the run's pool, shared by its stages
    images: ImageLoader
    ready: bool = field(default=False, compare=False)

    @property
    def side_table(self) -> str | None:
        return self.stage.SIDE_TABLE

    def compute(self, records: list[Record], raws: Mapping[str, Any]) -> list[Record]:
        if not self.ready:
            self.stage.setup(self.models, self.images)
            self.ready = True
        return self.stage(records)

    def decide(self, record: Record) -> None:
        self.stage.decide(record)

    def incomplete(self, record: Record) -> bool:
        return self.stage.incomplete(record)

    def rebase(self, stored: list[Record], record: Record) -> list[Record] | None:
        return self.stage.rebase(stored, record, self.images)

    def side_rows(self, scored: Record, decided: Record) -> list[dict[str, Any]]:
        return self.stage.side_rows(scored, decided)


Step = SourceStep | StageStep
