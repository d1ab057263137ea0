"""Words for the 80 COCO categories and caption editing for the copy-paste source.

`NOUNS` holds the words captions use for each category (singular and plural forms, the first of
each being the one we write); `mentions` finds a category in a caption; `replace_in_caption` and
`remove_from_caption` edit one, keeping number and articles right; `label_caption` builds a caption
from instance labels when the photo's own caption does not name the object.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from imgdiff.stages.edit.vocabulary import (
    COLLECTIVES,
    DETERMINERS,
    HEADS,
    MANY,
    NOUNS,
    NUMBERS,
    article,
    noun,
)

# -- captions -----------------------------------------------------------------------------------------
# A caption names an object when it holds one of its category's words. A replacement swaps the word
# for the new category's, keeping its number ("Two dogs sit" -> "Two cats sit") and fixing a/an; a
# removal drops the noun phrase where the sentence survives it ("A man riding a horse on a beach" ->
# "A man on a beach"). Where neither works, the caller builds captions from the labels instead.

_NOT_ADJECTIVE = DETERMINERS | {"and", "or", "with", "of", "on", "in", "at", "to", "by", "is", "are", "near"}
# Words after which "<word> <noun phrase>" can go without breaking the sentence.
_DROPPABLE_AFTER = (
    "with", "next to", "near", "beside", "behind", "by", "holding", "carrying", "riding", "on", "under",
    "beneath", "in front of", "on top of", "alongside", "atop", "and", "using", "eating", "watching",
)  # fmt: skip


def _word_pattern() -> tuple[re.Pattern[str], dict[str, tuple[str, bool | None]]]:
    lookup: dict[str, tuple[str, bool | None]] = {}
    for category, (singular, plural) in NOUNS.items():
        for word in singular + plural:
            number = None if word in singular and word in plural else word in plural
            lookup[word] = (category, number)
    words = sorted(lookup, key=lambda w: (-len(w), w))  # longest first: "hot dog" before "dog"
    return re.compile(r"\b(" + "|".join(re.escape(w) for w in words) + r")\b", re.IGNORECASE), lookup


_PATTERN, _LOOKUP = _word_pattern()


@dataclass(frozen=True)
class Mention:
    start: int
    end: int
    plural: bool


def mentions(caption: str, category: str) -> list[Mention]:
    """Where the caption names the category, in order (a longer phrase of another wins: "hot dog")."""
    out: list[Mention] = []
    for match in _PATTERN.finditer(caption):
        found, plural = _LOOKUP[match.group(0).lower()]
        after = re.match(r"\s+([A-Za-z]+)", caption[match.end() :])
        following = after.group(1).lower() if after else ""
        if found != category or following in HEADS or _LOOKUP.get(following, (category,))[0] != category:
            continue  # another object, or a modifier: "bus stop", "pizza box", "kite surfer"
        if plural is None:  # "sheep": the words around it tell
            plural = _plural_around(caption[: match.start()].lower().split(), following)
        if out and not caption[out[-1].end : match.start()].strip():  # "laptop computer" is one
            out[-1] = Mention(out[-1].start, match.end(), plural)
        else:
            out.append(Mention(match.start(), match.end(), plural))
    return out


def _plural_around(before: list[str], following: str) -> bool:
    """Whether a noun that is the same in both numbers is plural here: after a count or a quantity
    ("two sheep", "some sheep"), after a collective ("a herd of sheep") or before a plural verb
    ("the sheep are")."""
    last = before[-1] if before else ""
    collective = last == "of" and len(before) > 1 and before[-2] in COLLECTIVES
    counted = last in MANY or (last in NUMBERS and NUMBERS.index(last) > 1)
    return counted or collective or following in ("are", "were", "have")


def replace_in_caption(caption: str, old: str, new: str, count_old: int) -> str | None:
    """The caption with the object renamed, or None when it does not name it. All mentions change
    when the image holds one such object (they are all it), else only the first."""
    found = mentions(caption, old)
    if not found:
        return None
    for mention in reversed(found if count_old == 1 else found[:1]):
        word = noun(new, mention.plural)
        start = _phrase_start(caption, mention.start)
        if start < mention.start:  # keep the determiner, drop the old object's adjectives ("a red")
            determiner = caption[start:].split(maxsplit=1)[0]
            if determiner.lower() in ("a", "an"):
                a_or_an = article(word)
                determiner = a_or_an.capitalize() if determiner[0].isupper() else a_or_an
            word = f"{determiner} {word}"
        elif caption[mention.start].isupper():
            word = word[0].upper() + word[1:]
        caption = caption[:start] + word + caption[mention.end :]
    return caption


def remove_from_caption(caption: str, old: str) -> str | None:
    """The caption without its first mention of the object, or None when it does not name it in
    one noun phrase that can go (a plural, the subject, "a cup of ..." stay: the caller falls back)."""
    found = mentions(caption, old)
    if not found or found[0].plural:
        return None
    start, end = _phrase_start(caption, found[0].start), found[0].end
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


def label_caption(counts: dict[str, int]) -> str:
    """'a photo with a dog, two people and a car' from {category: count} (in the order given);
    a count over ten, or -1 (a crowd), reads 'many'."""
    parts = []
    for category, count in counts.items():
        if count == 1:
            word = noun(category)
            parts.append(f"{article(word)} {word}")
        elif count > 1 or count == -1:
            number = NUMBERS[count] if 1 < count <= 10 else "many"
            parts.append(f"{number} {noun(category, plural=True)}")
    if not parts:
        return "a photo"
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"a photo with {listed}"


def _close_list(head: str) -> str:
    """'a stove, a sink' -> 'a stove and a sink' once the list's last item went (a short item only,
    so a clause before a comma stays: 'On a sunny day, a man')."""
    last = head.rfind(",")
    item = head[last + 1 :].split()
    if last < 0 or not 1 <= len(item) <= 3 or item[0].lower() not in DETERMINERS | set(NUMBERS):
        return head
    return head[:last] + " and" + head[last + 1 :]


def _phrase_start(caption: str, noun_start: int) -> int:
    """Where the noun phrase ending in the noun at `noun_start` begins: its determiner, up to two
    adjectives back; the noun itself when there is none."""
    end = noun_start
    for back, word in enumerate(reversed(list(re.finditer(r"[A-Za-z'-]+", caption[:noun_start]))[-3:])):
        text = word.group(0).lower()
        if caption[word.end() : end].strip():  # punctuation between: another phrase
            break
        if text in DETERMINERS or text in NUMBERS:
            return word.start()
        if text in _NOT_ADJECTIVE or back >= 2:
            break
        end = word.start()
    return noun_start
