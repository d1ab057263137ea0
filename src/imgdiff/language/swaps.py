"""Swapping one object mention of a caption for another object, keeping the sentence right.

The new word takes the mention's number ("two dogs" -> "two cats"), a leading capital is kept and
an "a"/"an" right before it is made to fit ("a dog" -> "an elephant"). The edit stage keeps the old
object's modifiers ("a red car" -> "a red van": the two prompts stay aligned word for word); the
copy-paste source drops them and keeps only the word that opens the phrase ("a red stop sign" -> "an
umbrella": the pasted object is not red).

`targets` gives what may replace an object: another object of its super-category that may be a new
object (person roles such as "skier" are only replaced), not one the caption names already; where
the caption uses gendered pronouns, only people those pronouns fit ("a man holding his phone" -> "a
boy holding his phone").
"""

from __future__ import annotations

from functools import cache

from imgdiff.language.articles import refit_article
from imgdiff.language.coco_words import noun
from imgdiff.language.mentions import Mention, mentions_of
from imgdiff.language.vocabulary import SCENES, VocabObject, objects

_PRONOUNS = {word: "m" for word in ("he", "his", "him", "himself")}
_PRONOUNS |= {word: "f" for word in ("she", "her", "hers", "herself")}


def swap(caption: str, mention: Mention, word: str, keep_modifiers: bool = True) -> tuple[str, str]:
    """The caption with the mention replaced by `word` (already in the mention's number), and the
    new words as written."""
    if not keep_modifiers and mention.opens < mention.start:
        opener = caption[mention.opens :].split(maxsplit=1)[0]
        head = caption[: mention.opens] + opener + " "
    else:
        head = caption[: mention.start]
        if caption[mention.start].isupper():
            word = word[0].upper() + word[1:]
    if not mention.plural:
        head = refit_article(head, word)
    return head + word + caption[mention.end :], word


def replace(caption: str, mention: Mention, target: VocabObject) -> tuple[str, str]:
    """The caption with the mention replaced by the target, modifiers kept, and the target's words as
    written."""
    return swap(caption, mention, target.form(mention.plural))


def rename_category(caption: str, old: str, new: str, count_old: int) -> str | None:
    """The caption with COCO category `old` renamed `new`, modifiers dropped, or None when it does
    not name it. All mentions change when the image holds one such object (they are all it), else
    only the first."""
    found = mentions_of(caption, old)
    if not found:
        return None
    for mention in reversed(found if count_old == 1 else found[:1]):
        caption = swap(caption, mention, noun(new, mention.plural), keep_modifiers=False)[0]
    return caption


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


@cache
def _new_objects(group: str) -> tuple[VocabObject, ...]:
    return tuple(o for o in objects() if o.group == group and o.target)
