"""Dropping an object's noun phrase from a caption where the sentence survives it ("A man riding a
horse on a beach" -> "A man on a beach"). Plurals, the subject and "a cup of ..." stay: removing one
of two dogs, or the sentence's subject, leaves no true caption."""

from __future__ import annotations

import re

from imgdiff.language.grammar import OPENERS
from imgdiff.language.mentions import mentions_of

# Words after which "<word> <noun phrase>" can go without breaking the sentence.
_DROPPABLE_AFTER = (
    "with", "next to", "near", "beside", "behind", "by", "holding", "carrying", "riding", "on", "under",
    "beneath", "in front of", "on top of", "alongside", "atop", "and", "using", "eating", "watching",
)  # fmt: skip


def remove_category(caption: str, category: str) -> str | None:
    """The caption without its first mention of the COCO category, or None when it does not name it
    in one noun phrase that can go."""
    found = mentions_of(caption, category)
    if not found or found[0].plural:
        return None
    start, end = found[0].opens, found[0].end
    head, tail = caption[:start], caption[end:]
    if not head.strip() or re.match(r"\s*(of\b|'s\b)", tail):
        return None
    listed = re.match(r"\s*,\s*(?!and\b)", tail)
    joined = re.match(r"\s*,?\s*and\s+", tail)
    before = re.search(r"(?:\s*,|\s+(?:" + "|".join(_DROPPABLE_AFTER) + r"))\s*$", head, re.IGNORECASE)
    if listed:  # "with a stove, a sink" -> "with a sink"
        text = head + tail[listed.end() :]
    elif joined:  # "a stove, a sink and a fridge" -> "a stove and a fridge"
        text = re.sub(r",\s*$", " and ", head) + tail[joined.end() :]
    elif before:  # "a man riding a horse on a beach" -> "a man on a beach"
        text = _close_list(head[: before.start()]) if "and" in before.group(0) else head[: before.start()]
        text += tail
    else:
        return None
    text = re.sub(r"\s+([,.!?])", r"\1", re.sub(r"\s{2,}", " ", text)).strip()
    return text or None


def _close_list(head: str) -> str:
    """'a stove, a sink' -> 'a stove and a sink' once the list's last item went (a short item only,
    so a clause before a comma stays: 'On a sunny day, a man')."""
    last = head.rfind(",")
    item = head[last + 1 :].split()
    if last < 0 or not 1 <= len(item) <= 3 or item[0].lower() not in OPENERS:
        return head
    return head[:last] + " and" + head[last + 1 :]
