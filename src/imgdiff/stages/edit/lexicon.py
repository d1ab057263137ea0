"""Stage `edit`, method `lexicon`: swap one object noun phrase for another object of its
super-category, without weights ("a dog on a sofa" -> "a rabbit on a sofa").

Reading a caption: its words are matched against the vocabulary (`vocabulary.py`), longest phrase
first ("teddy bear" before "bear"). A match is an object that may be replaced unless it modifies the
next word ("train station", "orange cat"), is possessive or hyphenated ("man's", "dog-friendly"), is
part of a compound that names no such object ("home plate"), names a game ("playing frisbee", "a
game of frisbee"), is ambiguous ("glasses"), or is a colour word without a determiner ("orange and
white"). Object words that say what kind the next object is belong to its mention and are replaced
with it: "a computer desk" -> "a counter", "a laptop computer" -> "a monitor" (a person before an
object is an adjective and stays: "a baby elephant" -> "a baby lion").

Replacing it: by an object of the same super-category that may be a new object (person roles such as
"skier" are only replaced), that the caption does not name already and that no sibling edit used,
in the same number ("two dogs" -> "two cats"; "sheep" or "broccoli" take their number from their
determiner or the verb after them, and "a herd of zebra" is plural), with "a"/"an" fixed and a leading capital
kept. Modifiers stay ("a red car" -> "a red van"), which keeps the two prompts aligned word for
word. Where a caption uses gendered pronouns, a person is replaced only by people those pronouns
fit ("a man holding his phone" -> "a boy holding his phone"). The child's seed picks which object
to replace and by what.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import cache

from imgdiff.record import Edit, Record
from imgdiff.stages.edit import CHECKED, REFERENCE, EditSettings, EditStage
from imgdiff.stages.edit.validate import PHRASE_BOUNDARY, words
from imgdiff.stages.edit.vocabulary import (
    AMBIGUOUS,
    COLLECTIVES,
    COLOURS,
    DETERMINERS,
    GAMES,
    HEADS,
    MANY,
    NOT_OBJECTS,
    NUMBERS,
    SCENES,
    VocabObject,
    article,
    forms,
    longest_form,
    objects,
)

_TOKEN = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*")
_SINGULAR_BEFORE = {"a", "an", "one", "this", "that", "each", "every", "another"}
_SINGULAR_AFTER = {"is", "was", "has"}
_PRONOUNS = {word: "m" for word in ("he", "his", "him", "himself")}
_PRONOUNS |= {word: "f" for word in ("she", "her", "hers", "herself")}


@dataclass(frozen=True)
class Mention:
    """An object named in a caption: its characters, what it is and whether it is plural."""

    start: int
    end: int
    obj: VocabObject
    plural: bool


class LexiconEdit(EditStage):
    method = "lexicon"
    version = 2  # 2: finer kinds, compounds replaced whole, a stricter word diff
    Settings = EditSettings
    PRESETS = {"paper": dict(CHECKED), "reference": dict(REFERENCE)}

    def __call__(self, records: list[Record]) -> list[Record]:
        return self.finish([(record, self._children(record)) for record in records])

    def _children(self, record: Record) -> list[Record]:
        caption = record.caption_a
        if not words(caption):
            record.reject(self.name, "empty_caption: the record has no caption_a to edit")
            return []
        mentions, named = find_mentions(caption)
        if not mentions:
            record.reject(self.name, f"no_object: no object of the vocabulary in {caption[:60]!r}")
            return []
        context = set(words(caption))
        children: list[Record] = []
        used: set[str] = set()
        for k in range(self.settings.n_edits):
            options = [(m, targets(m.obj, named | used, context)) for m in mentions]
            options = [(m, found) for m, found in options if found]
            if not options:
                break
            child = self.child(record, k)
            rng = random.Random(child.seed)
            mention, found = options[rng.randrange(len(options))]
            target = found[rng.randrange(len(found))]
            used.add(target.name)
            child.caption_b, new = replace(caption, mention, target)
            child.edit = Edit(old=caption[mention.start : mention.end], new=new)
            children.append(child)
        if not children:
            names = ", ".join(sorted({m.obj.name for m in mentions}))
            record.reject(self.name, f"no_alternative: nothing of the same kind can replace {names}")
        return children


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
            singular = _number_word(caption, tokens, lower, first) in _SINGULAR_BEFORE
            either = not singular and around.after not in _SINGULAR_AFTER
            plural = number == "plural" or collective or (number == "either" and either)
            mentions.append(Mention(start, end, obj, plural))
            modifiers_from = None
        else:
            modifiers_from = first if _names_the_next_object(phrase, obj, around, edges) else None
        i += n
    return mentions, named


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


def _number_word(caption: str, tokens: list[re.Match[str]], lower: list[str], i: int) -> str:
    """The determiner or count of the noun phrase whose words start at token i, up to two
    modifiers back ("a white sheep" -> "a"), or "" when there is none."""
    for j in range(i - 1, max(-1, i - 4), -1):
        if not _joined(caption, tokens[j], tokens[j + 1]):
            break
        if lower[j] in PHRASE_BOUNDARY:
            return lower[j]
    return ""


def targets(obj: VocabObject, excluded: set[str], context: set[str]) -> list[VocabObject]:
    """What may replace `obj` in a caption of the words `context`: its super-category's possible
    new objects but itself and `excluded` (the scene's, where it sets one); for people, only those
    the caption's gendered pronouns fit."""
    group, cues = SCENES.get(obj.name, (obj.group, frozenset()))
    out = [
        o
        for o in _new_objects(group if context & cues else obj.group)
        if o is not obj and o.name not in excluded
    ]
    genders = {_PRONOUNS[w] for w in context if w in _PRONOUNS}
    if obj.group == "person" and genders:
        fits = genders if len(genders) == 1 else {obj.gender}
        out = [o for o in out if o.gender in fits]
    return out


def replace(caption: str, mention: Mention, target: VocabObject) -> tuple[str, str]:
    """The caption with the mention replaced by the target, and the target's words as written."""
    word = target.form(mention.plural)
    if caption[mention.start].isupper():
        word = word[0].upper() + word[1:]
    head = caption[: mention.start]
    indefinite = re.search(r"\b(an?)(\s+)$", head, re.IGNORECASE)
    if indefinite and not mention.plural:
        a_or_an = article(word)
        if indefinite.group(1)[0].isupper():
            a_or_an = a_or_an.capitalize()
        head = head[: indefinite.start(1)] + a_or_an + indefinite.group(2)
    return head + word + caption[mention.end :], word


@cache
def _new_objects(group: str) -> tuple[VocabObject, ...]:
    return tuple(o for o in objects() if o.group == group and o.target)


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
