"""Stage `edit`: rewrite each caption so that exactly one object is replaced (METHOD.md 1).

Methods: `lexicon` (weight-free: one object noun phrase swapped for another object of its
super-category, `imgdiff.language`) and `llm` (a text generator asked for one plausible replacement as
JSON). Both share what this module does with their proposals:
- Fan-out: each input record (its `caption_a`) gives `n_edits` children `<id>-<k>`, each with a seed
  of its own and a distinct new object; a child holds `caption_b`, `edit` (old, new) and
  `kind: replacement`. A caption that gets no child at all (no known object, nothing to ask)
  comes back itself, rejected with the reason.
- Validation: with `checks: imgdiff` every child passes `validate.check_edit` (one noun phrase
  replaced, nothing else) and must differ from its siblings (`duplicate`); with `checks: reference`
  (preset `reference`) only the reference's keyword filter applies, so the two can be compared.
- Scores: `length_ratio` (words of caption_b per word of caption_a) and `clip_tokens` (OpenAI CLIP
  text tokens of caption_b); thresholds `length_ratio_min/max` and `clip_tokens_max` (CLIP's
  window: 75 text tokens, or the prompt is cut before the image model sees the edit).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from imgdiff.clip_tokens import WINDOW, clip_tokenizer, count_clip_tokens
from imgdiff.language.text import words
from imgdiff.record import Record
from imgdiff.stages.base import Stage, StageSettings
from imgdiff.stages.edit.validate import check_edit, length_ratio, reference_filter

if TYPE_CHECKING:
    from imgdiff.models import ModelPool
    from imgdiff.store import ImageLoader


class EditSettings(StageSettings):
    SCORES = {"length_ratio": (0.0, math.inf), "clip_tokens": (0.0, math.inf)}
    n_edits: int = Field(default=1, ge=1)  # children per caption, each with another new object
    checks: Literal["imgdiff", "reference"] = "imgdiff"
    length_ratio_min: float | None = None
    length_ratio_max: float | None = None
    clip_tokens_max: int | None = None


# Ours (the reference checks none of this): a one-phrase swap changes a caption of 5+ words by far
# less than half or double; CLIP sees 75 text tokens.
CHECKED = {"length_ratio_min": 0.5, "length_ratio_max": 2.0, "clip_tokens_max": WINDOW}
REFERENCE = {"checks": "reference"}


class EditStage(Stage):
    name = "edit"
    Settings = EditSettings

    def setup(self, models: ModelPool, images: ImageLoader) -> None:
        super().setup(models, images)
        clip_tokenizer()  # fail fast, with the install command, when the CLIP vocabulary is missing

    def child(self, parent: Record, k: int) -> Record:
        """The k-th edit of a caption, with nothing of an earlier edit (a source may bring one)."""
        kid = parent.child(k)
        kid.caption_b, kid.edit = "", None
        return kid

    def finish(self, groups: list[tuple[Record, list[Record]]]) -> list[Record]:
        """Validate and score each parent's children (proposals in `caption_b`/`edit`, or rejected);
        a parent without children comes back as it is (rejected by the method)."""
        out: list[Record] = []
        for parent, children in groups:
            seen: dict[tuple[str, ...], int] = {}
            for child in children:
                if child.kept:
                    self._check(child, seen)
            out += children or [parent]
        scored = [r for r in out if r.caption_b and r.edit is not None and r.kept]
        for record, count in zip(scored, count_clip_tokens([r.caption_b for r in scored]), strict=True):
            record.scores[f"{self.name}.clip_tokens"] = float(count)
        return out

    def _check(self, child: Record, seen: dict[tuple[str, ...], int]) -> None:
        assert child.edit is not None
        child.kind = "replacement"
        child.scores[f"{self.name}.length_ratio"] = length_ratio(child.caption_a, child.caption_b)
        if self.settings.checks == "reference":
            word = reference_filter(child.caption_b)
            if word is not None:
                child.reject(self.name, f"reference_keyword: '{word}' in the edited caption")
            return
        reason = check_edit(child.caption_a, child.caption_b, child.edit.old, child.edit.new)
        key = tuple(words(child.caption_b))
        if reason is None and key in seen:
            reason = f"duplicate: the same edit as child {seen[key]}"
        if reason is not None:
            child.reject(self.name, reason)
        else:
            seen[key] = child.child_index[-1]
