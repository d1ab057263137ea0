"""Where a caption names objects of the vocabulary, and in which number.

A caption's words are matched against the lexicon's objects (`vocabulary.py`), longest phrase first
("teddy bear" before "bear"). A match is a mention, an object that may be replaced, unless it
modifies the next word ("train station", "orange cat"), is possessive or hyphenated ("man's",
"dog-friendly"), is part of a compound that names no such object ("home plate"), names a game
("playing frisbee", "a game of frisbee"), is ambiguous ("glasses"), or is a colour word without a
determiner ("orange and white"). Object words that say what kind the next object is belong to its
mention: "a computer desk" is one mention of a desk, "a laptop computer" one of a laptop (a person
before an object is an adjective and stays out: "a baby elephant").

A mention's number: its word's own ("dogs"), or for a word of either number ("sheep", "broccoli")
its determiner or the verb after it (`grammar.is_plural`); "a herd of zebra" is plural. Its phrase
opens with the determiner, number or quantifier up to two modifiers before it ("a white sheep").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from imgdiff.language.grammar import (
    COLLECTIVES,
    DETERMINERS,
    MANY,
    NUMBERS,
    OPENERS,
    PHRASE_BOUNDARY,
    is_plural,
)
from imgdiff.language.vocabulary import (
    AMBIGUOUS,
    COLOURS,
    GAMES,
    HEADS,
    NOT_OBJECTS,
    VocabObject,
    forms,
    longest_form,
)

_TOKEN = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*")
_MODIFIERS = 2  # modifiers between a noun and the word that opens its phrase


@dataclass(frozen=True)
class Mention:
    """An object named in a caption: its characters, what it is and whether it is plural, and where
    its noun phrase opens (its determiner, number or quantifier; `start` when it has none)."""

    start: int
    end: int
    obj: VocabObject
    plural: bool
    opens: int


def find_mentions(caption: str) -> tuple[list[Mention], set[str]]:
    """The objects of the caption that may be replaced, in order, and the names of every object the
    caption names (modifiers included: "train station" names a train)."""
    tokens = list(_TOKEN.finditer(caption))
    lower = [t.group(0).lower().replace("’", "'") for t in tokens]
    mentions: list[Mention] = []
    named: set[str] = set()
    modifiers_from: int | None = None  # first token of the object words that modify this one
    i = 0
    while i < len(tokens):
        n, hit = _longest_hit(caption, tokens, lower, i)
        if hit is None:
            modifiers_from = None
            i += 1
            continue
        obj, number = hit
        named.add(obj.name)
        phrase = " ".join(lower[i : i + n])
        start, end = tokens[i].start(), tokens[i + n - 1].end()
        around = _Around.of(caption, tokens, lower, i, i + n)
        edges = caption[start - 1 : start] + caption[end : end + 1]
        first = i if modifiers_from is None else modifiers_from
        if _replaceable(phrase, around, edges):
            # "a computer desk" is replaced whole: "a computer nightstand" is no nightstand.
            start = tokens[first].start()
            whole = _Around.of(caption, tokens, lower, first, i + n)
            collective = whole.before == "of" and whole.before_two.split(" ")[0] in COLLECTIVES
            opener = _opener(caption, tokens, lower, first)
            determiner = lower[opener] if opener is not None else ""
            plural = is_plural(number, determiner, around.after, collective)
            opens = tokens[opener].start() if opener is not None and determiner in OPENERS else start
            mentions.append(Mention(start, end, obj, plural, opens))
            modifiers_from = None
        else:
            modifiers_from = first if _names_the_next_object(phrase, obj, around, edges) else None
        i += n
    return mentions, named


def mentions_of(caption: str, category: str) -> list[Mention]:
    """The mentions of objects of one COCO category ("person": a man, a skier, ...), in order."""
    return [m for m in find_mentions(caption)[0] if m.obj.category == category]


@dataclass(frozen=True)
class _Around:
    """The words right before and after a phrase (only across whitespace: "dog-friendly" has none)."""

    before: str
    before_two: str
    after: str
    after_two: str

    @classmethod
    def of(cls, caption: str, tokens: list[re.Match[str]], lower: list[str], i: int, j: int) -> _Around:
        before = lower[i - 1] if i > 0 and _joined(caption, tokens[i - 1], tokens[i]) else ""
        after = lower[j] if j < len(tokens) and _joined(caption, tokens[j - 1], tokens[j]) else ""
        return cls(
            before,
            " ".join(lower[i - 2 : i]) if i > 1 and before else "",
            after,
            " ".join(lower[j : j + 2]) if after else "",
        )


def _replaceable(phrase: str, around: _Around, edges: str) -> bool:
    """Whether a vocabulary phrase is an object to replace where it stands (see the module doc)."""
    modifier = around.after in HEADS or around.after in forms() or around.after_two in forms()
    compound = f"{around.before} {phrase}" in NOT_OBJECTS or f"{around.before_two} {phrase}" in NOT_OBJECTS
    game = around.before in GAMES or around.before_two in GAMES
    colour = phrase in COLOURS and around.before not in DETERMINERS | set(NUMBERS) | MANY
    return not (modifier or compound or game or colour or phrase in AMBIGUOUS or "-" in edges)


def _names_the_next_object(phrase: str, obj: VocabObject, around: _Around, edges: str) -> bool:
    """Whether an object word says what kind of object the next one is ("computer desk", "laptop
    computer", "apple pie"), so that the two are replaced together; a person ("baby elephant") or a
    colour is an adjective there and stays."""
    next_object = around.after in forms() or around.after_two in forms()
    return next_object and obj.group != "person" and phrase not in COLOURS | AMBIGUOUS and "-" not in edges


def _opener(caption: str, tokens: list[re.Match[str]], lower: list[str], i: int) -> int | None:
    """The token that ends the run of modifiers before the noun phrase whose words start at token i,
    up to two modifiers back ("a white sheep" -> "a"; a hyphenated modifier is one: "a
    sparsely-decorated desk"), or None when there is none."""
    modifiers = 0
    for j in range(i - 1, -1, -1):
        gap = caption[tokens[j].end() : tokens[j + 1].start()]
        if gap == "-" and j + 1 < i:
            continue
        if not (gap and gap.isspace()):
            return None
        if lower[j] in PHRASE_BOUNDARY:
            return j
        modifiers += 1
        if modifiers > _MODIFIERS:
            return None
    return None


def _longest_hit(
    caption: str, tokens: list[re.Match[str]], lower: list[str], i: int
) -> tuple[int, tuple[VocabObject, str] | None]:
    """How many tokens from i form the longest vocabulary phrase, and what it names."""
    table = forms()
    for n in range(min(longest_form(), len(tokens) - i), 0, -1):
        if all(_joined(caption, tokens[i + k - 1], tokens[i + k]) for k in range(1, n)):
            hit = table.get(" ".join(lower[i : i + n]))
            if hit is not None:
                return n, hit
    return 1, None


def _joined(caption: str, left: re.Match[str], right: re.Match[str]) -> bool:
    """Whether two tokens are separated by whitespace only (so they can form one phrase)."""
    gap = caption[left.end() : right.start()]
    return bool(gap) and gap.isspace()
