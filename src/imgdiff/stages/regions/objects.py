"""Which object each image shows where it changed: the text a crop is matched against.

A record with an `edit` has it exactly (`old` in image a, `new` in image b; "" for a removal).
A user pair without one falls back on its captions, as the reference does (METHOD.md 3.2): the
words of `caption_a` that `caption_b` replaced, and the other way round, found by a word diff,
with function words dropped (the reference keeps the differing nouns; we have no tagger offline,
and a crop matched against "red car" rather than "car" loses little).
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

from imgdiff.record import Record

# Words that never name an object: articles, prepositions, conjunctions, auxiliaries, pronouns.
FUNCTION_WORDS = frozenset(
    " ".join(
        [
            "a an the this that these those some any one two three",
            "of in on at by with without from to into onto over under near next behind beside between",
            "above below for and or but while as",
            "is are was were be been being has have had it its their his her there here",
        ]
    ).split()
)
_WORD = re.compile(r"[\w'-]+")


def changed_objects(record: Record) -> tuple[str, str]:
    """(object in image a, object in image b); "" where that image has none to match."""
    if record.edit is not None:
        return record.edit.old.strip(), record.edit.new.strip()
    return caption_difference(record.caption_a, record.caption_b)


def caption_difference(caption_a: str, caption_b: str) -> tuple[str, str]:
    """The words each caption has where the other differs, function words dropped: ("red car",
    "bus") for "a red car on a road" / "a bus on a road"; ("", "") for equal or missing captions."""
    words_a, words_b = _WORD.findall(caption_a.lower()), _WORD.findall(caption_b.lower())
    old: list[str] = []
    new: list[str] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(a=words_a, b=words_b, autojunk=False).get_opcodes():
        if tag != "equal":
            old += words_a[i1:i2]
            new += words_b[j1:j2]

    def content(words: list[str]) -> str:
        return " ".join(w for w in words if w not in FUNCTION_WORDS)

    return content(old), content(new)
