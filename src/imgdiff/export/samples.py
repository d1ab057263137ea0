"""What every export format writes: samples, each one picture, a question and an answer.

A format never looks at records: it asks a sample for its `question`, `answer`, `fields()` (the flat
columns of parquet, the keys `--where` can name) and gets the encoded picture from the export call,
which renders and encodes it once for all formats. Two sample types:

- `DifferenceSample`: one per (kept pair, accepted described box), METHOD.md 4.5: the pair side by
  side with that box drawn, and the box's difference caption as the answer.
- `ChoiceSample`: a multiple-choice question on a pair (object removal's MCQ): the pair side by side
  (in either order, with or without a box framed on both), the lettered options, and the right
  letter as the answer. `removal_sample` makes object removal's from a `remove` child.
"""

from __future__ import annotations

import random
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from imgdiff.record import Record
from imgdiff.render import side_by_side

QUESTION = (
    "The two images are shown side by side, separated by a black bar. What is the difference "
    "between the contents of the red boxes? Answer in a few concise sentences."
)
CHOICE_INTRO = "The two images are shown side by side, separated by a black bar."


@dataclass(frozen=True)
class Sample:
    type: ClassVar[str]
    record: Record

    @property
    def id(self) -> str:
        """Unique within an export, stable across reruns; names the picture's file."""
        raise NotImplementedError

    @property
    def question(self) -> str:
        raise NotImplementedError

    @property
    def answer(self) -> str:
        raise NotImplementedError

    @property
    def group(self) -> str:
        """The source item's id: every sample from one source item lands in the same split."""
        return self.record.id[:12]  # a child's id starts with its source item's 12-character id

    @property
    def object(self) -> str | None:
        """The replaced or removed object, for `--max-per-object`; None when the pair names none."""
        edit = self.record.edit
        return " ".join(edit.old.lower().split()) if edit and edit.old.strip() else None

    def framing(self) -> tuple[bool, Sequence[float] | None]:
        """How the picture shows the pair: whether image b is on the left, and the box framed on
        both sides (or None)."""
        raise NotImplementedError

    def picture(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The one image the trainer sees, from the pair's images a and b (RGB uint8)."""
        swapped, box = self.framing()
        left, right = (b, a) if swapped else (a, b)
        return side_by_side(left, right, box)

    def fields(self) -> dict[str, Any]:
        """Flat columns: the sample's own, then the record's, then every score of the record."""
        record = self.record
        out: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "question": self.question,
            "answer": self.answer,
            **self.own_fields(),
            "record_id": record.id,
            "source_index": record.source_index,
            "kind": record.kind,
            "caption_a": record.caption_a,
            "caption_b": record.caption_b,
            "edit.old": record.edit.old if record.edit else None,
            "edit.new": record.edit.new if record.edit else None,
        }
        out.update({name: float(value) for name, value in record.scores.items()})
        return out

    def own_fields(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True)
class DifferenceSample(Sample):
    type: ClassVar[str] = "difference"
    index: int  # the box's index in record.regions

    @property
    def id(self) -> str:
        return f"{self.record.id}_{self.index}"

    @property
    def question(self) -> str:
        return QUESTION

    @property
    def answer(self) -> str:
        return self.record.regions[self.index].difference or ""

    def framing(self) -> tuple[bool, Sequence[float] | None]:
        return False, self.record.regions[self.index].box

    def own_fields(self) -> dict[str, Any]:
        region = self.record.regions[self.index]
        return {
            "choices": None,
            "region.index": self.index,
            "region.box": [float(v) for v in region.box],
            "region.source": region.source,
            **{f"region.{name}": float(value) for name, value in region.scores.items()},
        }


@dataclass(frozen=True)
class ChoiceSample(Sample):
    type: ClassVar[str] = "choice"
    prompt: str  # the question before the options, e.g. "Which object is missing from the right image?"
    choices: tuple[str, ...]
    correct: int  # index into choices
    name: str = "mcq"  # tells several questions on one pair apart in the id
    box: tuple[float, ...] | None = None  # framed at the same place on both images
    swapped: bool = False  # True: image b on the left, image a on the right

    def __post_init__(self) -> None:
        if not 2 <= len(self.choices) <= 26 or not 0 <= self.correct < len(self.choices):
            raise ValueError(f"a choice sample needs 2-26 options and a valid answer, got {self.choices}")

    @property
    def id(self) -> str:
        return f"{self.record.id}_{self.name}"

    @property
    def question(self) -> str:
        options = "\n".join(f"{string.ascii_uppercase[i]}. {c}" for i, c in enumerate(self.choices))
        return f"{CHOICE_INTRO} {self.prompt}\n{options}\nAnswer with the option's letter."

    @property
    def answer(self) -> str:
        return string.ascii_uppercase[self.correct]

    def framing(self) -> tuple[bool, Sequence[float] | None]:
        return self.swapped, self.box

    def own_fields(self) -> dict[str, Any]:
        box = None if self.box is None else [float(v) for v in self.box]
        return {"choices": list(self.choices), "region.box": box, "swapped": self.swapped}


SIDES = ("left", "right")


def removal_sample(record: Record) -> ChoiceSample | None:
    """Object removal's question (METHOD.md 5) on a kept child of the `remove` stage: image a holds
    the object, image b does not. Which side shows image a is drawn from the record's seed, so the
    answers are balanced; the answer letter names the side that HAS the object (the reference's
    letter pointed at the other one)."""
    if not record.kept or record.kind != "removal" or "remove.present_before" not in record.scores:
        return None
    if record.edit is None or not record.edit.old.strip() or not record.truth:
        return None
    object_on_right = random.Random(record.seed).random() < 0.5
    return ChoiceSample(
        record,
        prompt=f"Which image has {record.edit.old.strip()} in the red box?",
        choices=SIDES,
        correct=SIDES.index("right" if object_on_right else "left"),
        name="removal",
        box=tuple(record.truth[0].box),
        swapped=object_on_right,
    )


def difference_samples(record: Record) -> list[DifferenceSample]:
    """One sample per box that `describe` accepted and described, of a kept record."""
    if not record.kept:
        return []
    return [
        DifferenceSample(record, k)
        for k, region in enumerate(record.regions)
        if region.rejected_by is None and region.difference
    ]


def samples_of_record(record: Record) -> list[Sample]:
    """A record's samples: difference samples (by box), then a removal child's question."""
    removal = removal_sample(record)
    return [*difference_samples(record), *([removal] if removal else [])]


def samples_of_records(records: list[Record]) -> list[Sample]:
    """Every sample of a run, record by record in canonical order."""
    return [s for record in sorted(records, key=Record.sort_key) for s in samples_of_record(record)]


def canonical(sample: Sample) -> tuple[Any, ...]:
    """The order of samples in every export: by record, difference samples first, then by id."""
    return (sample.record.sort_key(), sample.type != "difference", sample.id)
