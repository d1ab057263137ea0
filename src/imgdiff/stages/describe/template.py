"""Difference captions without weights: sentences built from the record's edit, kind and box.

The `vlm` method asks a multimodal model what differs in the red boxes (METHOD.md section 4); this
method writes the same fields from what the record already knows: the edit's old/new object
phrases, the kind of change, and where the box lies in image a. Several phrasings per kind, picked
by the record's seed and the region's index, so the data is varied yet byte-identical on a rerun.

`__call__` captions every box and stores its area (a fraction of image a); `decide` walks the boxes
in order (most different first) and keeps or skips them, so caps and areas can be re-thresholded
from stored output.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from pydantic import Field

from imgdiff.language.articles import with_article
from imgdiff.record import Record, Region
from imgdiff.stages.base import Stage, StageSettings

if TYPE_CHECKING:
    from imgdiff.store import ImageLoader

# Per phrasing kind: difference sentences over {old}, {Old} (capitalised), {new} and {where}.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "replacement": (
        "In the red box {where}, the left image shows {old}, while the right image shows {new}.",
        "{Old} in the red box {where} of the left image has been replaced by {new} in the right image.",
        "The red boxes {where} differ: the left image has {old} there and the right image has {new}.",
        "Inside the red box {where}, {old} in the left image becomes {new} in the right image.",
        "The left image contains {old} in the red box {where}. In the right image, {new} takes its place.",
    ),
    "removal": (
        "In the red box {where}, the left image shows {old}, while in the right image it is gone.",
        "{Old} in the red box {where} of the left image has been removed in the right image.",
        "The red boxes {where} differ: the left image has {old} there and the right image shows "
        "only the background.",
        "Inside the red box {where}, {old} appears in the left image but is missing from the right one.",
        "The left image contains {old} in the red box {where}. In the right image, that spot is empty.",
    ),
    "distractor": (
        "The content of the red box {where} is the same in both images; they differ only in their "
        "overall look.",
        "Nothing was added, removed or replaced in the red box {where}; the change affects the whole image.",
        "The red boxes {where} show the same thing in both images; the difference is global, not local.",
        "There is no object change in the red box {where}: the two images differ as a whole.",
    ),
    "unknown": (
        "The object in the red box {where} differs between the two images.",
        "Inside the red box {where}, the left and right images show different contents.",
        "The content of the red box {where} in the left image has changed in the right image.",
        "The two images differ in the red box {where}: what is there on the left is not what is there "
        "on the right.",
    ),
}

# (row, column) of the box centre in thirds of image a -> where the box is.
WHERE = {
    ("top", "left"): "in the top-left corner",
    ("top", "centre"): "at the top",
    ("top", "right"): "in the top-right corner",
    ("middle", "left"): "on the left side",
    ("middle", "centre"): "in the centre",
    ("middle", "right"): "on the right side",
    ("bottom", "left"): "in the bottom-left corner",
    ("bottom", "centre"): "at the bottom",
    ("bottom", "right"): "in the bottom-right corner",
}


class TemplateDescribeSettings(StageSettings):
    DECISIONS = frozenset({"max_regions"})
    SCORES = {"area": (0.0, 1.0)}  # a box's share of image a

    area_min: float | None = None  # skip boxes smaller than this share of image a
    area_max: float | None = None  # skip boxes larger than this share of image a
    max_regions: int | None = Field(None, ge=1)  # stop once this many boxes are accepted


class TemplateDescribe(Stage):
    name = "describe"
    method = "template"
    version = 2  # 2: a/an from inflect ("a urinal"), one determiner set
    Settings = TemplateDescribeSettings
    # METHOD.md section 4: the research code skips boxes under 1/400 of the image and stops after 5
    # accepted; the Data-Juicer recipe skips boxes over 1/10, with no minimum and no cap.
    PRESETS = {
        "paper": {"area_min": 0.0025, "max_regions": 5},
        "data-juicer": {"area_max": 0.1},
    }

    def __call__(self, records: list[Record]) -> list[Record]:
        for record in records:
            width, height = self._size(record)
            described = 0
            for k, region in enumerate(record.regions):
                if region.rejected_by is not None:  # dropped by an earlier stage
                    continue
                x1, y1, x2, y2 = np.clip(region.box, 0, [width, height, width, height])
                region.scores["area"] = float(max(x2 - x1, 0) * max(y2 - y1, 0) / (width * height))
                region.captions, region.difference = phrase(record, region, k, width, height)
                described += 1
            record.scores["describe.regions"] = float(described)
        return records

    def rebase(self, stored: list[Record], record: Record, images: ImageLoader) -> list[Record] | None:
        """The per-box work is the phrasing, which costs nothing and depends on the box's place in
        the list: phrase the boxes as they are now, as a fresh run would."""
        self.images = images
        return self([Record.from_dict(record.to_dict())])

    def decide(self, record: Record) -> None:
        """Walk the boxes in order: skip those outside the area band, stop at `max_regions`."""
        accepted = 0
        for region in record.regions:
            if region.rejected_by == self.name:  # a stored copy decided before: decide afresh
                region.rejected_by = region.reason = None
            if region.rejected_by is not None:
                continue
            reason = self._skip(region, accepted)
            if reason is None:
                accepted += 1
            else:
                region.rejected_by, region.reason = self.name, reason
        if not accepted:
            record.reject(self.name, f"no_regions: none of {len(record.regions)} boxes accepted")

    def _skip(self, region: Region, accepted: int) -> str | None:
        """Why this box is skipped, or None to accept it."""
        s = self.settings
        if s.max_regions is not None and accepted >= s.max_regions:
            return f"max_regions: {s.max_regions} already accepted"
        return self.failed_threshold(region.scores)  # area_min / area_max on the region's area

    def _size(self, record: Record) -> tuple[int, int]:
        """(width, height) of image a, from the batch's pixels or the file header (no decoding)."""
        if "a" in record.artifacts:
            height, width = np.asarray(record.artifacts["a"]).shape[:2]
            return int(width), int(height)
        with Image.open(self.images.root / record.images["a"]) as image:
            return image.size


def phrase(record: Record, region: Region, k: int, width: int, height: int) -> tuple[dict[str, str], str]:
    """({"a": caption, "b": caption}, difference) for region k of the record."""
    kind = phrasing_kind(record)
    edit = record.edit
    # Without an edit (a user's pair) the wording stays generic but honest.
    old = (with_article(edit.old) if edit else "") or "an object"
    new = (with_article(edit.new) if edit else "") or "a different object"
    captions = {
        "replacement": {"a": old, "b": new},
        "removal": {"a": old, "b": "only the background"},
        "distractor": {"a": "unchanged content", "b": "unchanged content"},
        "unknown": {"a": "the original content", "b": "changed content"},
    }[kind]
    choices = TEMPLATES[kind]
    digest = hashlib.sha256(f"{record.seed}:{k}".encode()).digest()
    template = choices[int.from_bytes(digest[:8], "big") % len(choices)]
    where = position(region.box, width, height)
    difference = template.format(old=old, Old=old[:1].upper() + old[1:], new=new, where=where)
    return captions, difference[:1].upper() + difference[1:]


def phrasing_kind(record: Record) -> str:
    """Which template set fits: an edit with an empty `new` reads as a removal whatever the kind."""
    if record.kind == "distractor" or record.edit is None:
        return record.kind
    if record.kind == "removal" or not record.edit.new.strip():
        return "removal"
    return "replacement"


def position(box: list[float], width: int, height: int) -> str:
    """Where the box centre lies, in thirds of the image: 'in the top-left corner', 'in the centre'."""
    cx, cy = (box[0] + box[2]) / 2 / width, (box[1] + box[3]) / 2 / height
    row = "top" if cy < 1 / 3 else "bottom" if cy > 2 / 3 else "middle"
    column = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else "centre"
    return WHERE[row, column]
