"""Text of a run: caption lengths, diversity of difference captions, what was replaced with what.

distinct-n is the number of distinct word n-grams over the number of n-grams, over all difference
captions of kept boxes (lower-cased words); the paper's diversity figures are the number of object
categories and of unique replacement pairs (METHOD.md section 4), counted here from `record.edit`.
Object phrases are put in categories with the edit lexicon's vocabulary where it knows the phrase.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

_WORD = re.compile(r"[\w']+")
TOP = 15
UNKNOWN = "unknown to the lexicon"


@dataclass
class TextStats:
    lengths: dict[str, list[int]] = field(
        default_factory=lambda: {"caption_a": [], "caption_b": [], "difference": []}
    )
    unigrams: Counter[str] = field(default_factory=Counter)
    bigrams: Counter[tuple[str, str]] = field(default_factory=Counter)
    replaced: Counter[str] = field(default_factory=Counter)
    pairs: Counter[tuple[str, str]] = field(default_factory=Counter)
    categories: Counter[str] = field(default_factory=Counter)

    def add(self, record: dict[str, Any]) -> None:
        """Count one kept record."""
        for name in ("caption_a", "caption_b"):
            text = record.get(name)
            if isinstance(text, str) and text:
                self.lengths[name].append(len(_WORD.findall(text)))
        for region in record.get("regions") or []:
            text = region.get("difference") if isinstance(region, dict) else None
            if region.get("rejected_by") is None and isinstance(text, str) and text:
                words = _WORD.findall(text.lower())
                self.lengths["difference"].append(len(words))
                self.unigrams.update(words)
                self.bigrams.update(zip(words, words[1:], strict=False))
        edit = record.get("edit")
        if isinstance(edit, dict) and edit.get("old"):
            old, new = str(edit["old"]).strip().lower(), str(edit.get("new") or "").strip().lower()
            self.replaced[old] += 1
            self.pairs[old, new or "(removed)"] += 1
            self.categories[_category(old)] += 1

    def distinct(self, n: int) -> float | None:
        grams = self.unigrams if n == 1 else self.bigrams
        total = sum(grams.values())
        return len(grams) / total if total else None

    def summary(self) -> dict[str, Any]:
        return {
            "distinct_1": self.distinct(1),
            "distinct_2": self.distinct(2),
            "difference_captions": len(self.lengths["difference"]),
            "objects": len(self.replaced),
            "replacement_pairs": len(self.pairs),
            "top_replaced": self.replaced.most_common(TOP),
            "top_pairs": [(f"{a} → {b}", n) for (a, b), n in self.pairs.most_common(TOP)],
            # shown only when the lexicon knows some objects (it knows none of the synthetic shapes)
            "categories": self.categories.most_common(TOP) if set(self.categories) - {UNKNOWN} else [],
            "category_count": len(set(self.categories) - {UNKNOWN}),
        }


def _category(phrase: str) -> str:
    """The lexicon's super-category of an object phrase (its last words), if it knows it."""
    from imgdiff.language.vocabulary import forms

    known = forms()
    words = phrase.split()
    for start in range(len(words)):
        found = known.get(" ".join(words[start:]))
        if found is not None:
            return found[0].group
    return UNKNOWN
