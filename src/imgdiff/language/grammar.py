"""Closed word classes that carry number, determination and agreement, and the rules over them.

One set per job, shared by every caption rule: the `edit` stage's mentions and checks, the
copy-paste source's caption edits and the template captions of `describe`.
"""

from __future__ import annotations

NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
# Quantifiers that stand in place of an article ("several dogs", never "a several dogs").
QUANTIFIERS = frozenset({"some", "several", "many", "multiple", "numerous", "various"})
# Words before a noun that make it plural in meaning ("a few dogs", "lots of dogs", "a group of").
MANY = QUANTIFIERS | {"few", "lots", "bunch", "group"}
# Articles, demonstratives, possessives and the distributives: a noun phrase's first word.
DETERMINERS = frozenset({
    "a", "an", "the", "this", "that", "these", "those", "my", "your", "his", "her", "its", "our", "their",
    "one", "another", "each", "every", "no", "some",
})  # fmt: skip
# Words that open a noun phrase in place of an article ("the dog", "two dogs", "several dogs").
OPENERS = DETERMINERS | set(NUMBERS) | QUANTIFIERS
# Determiners that make the noun after them singular ("a sheep", "each sheep").
SINGULAR_DETERMINERS = frozenset({"a", "an", "one", "this", "that", "each", "every", "another"})
# Verbs after a noun that make it singular ("the sheep is").
SINGULAR_VERBS = frozenset({"is", "was", "has"})
# "<word> of" before a singular noun that makes it plural in meaning: "a herd of zebra".
COLLECTIVES = frozenset({
    "herd", "flock", "group", "bunch", "pile", "couple", "lot", "lots", "number", "set", "row", "line",
    "stack", "pack", "team", "crowd", "fleet", "pair", "few", "variety", "collection", "assortment",
})  # fmt: skip
# Words that change with the number or gender of a replaced noun, not with its meaning.
AGREEMENT = frozenset({
    "a", "an", "the", "is", "are", "was", "were", "has", "have", "does", "do", "this", "these", "that",
    "those", "it", "its", "they", "their", "them", "he", "she", "his", "her", "hers", "him", "himself",
    "herself", "itself", "themselves",
})  # fmt: skip
# Words that end a noun phrase's run of modifiers when walking back from its noun.
PHRASE_BOUNDARY = AGREEMENT | set(NUMBERS) | MANY | {
    "of", "on", "in", "at", "to", "by", "with", "and", "or", "near", "next", "from", "for", "into", "onto",
    "over", "under", "behind", "beside", "while", "as", "some", "one", "another", "each", "every", "no",
    "not",
}  # fmt: skip


def is_plural(number: str, determiner: str, verb_after: str, collective: bool) -> bool:
    """Whether a noun is plural where it stands. `number` is the word's own ("singular", "plural" or
    "either": "sheep", "broccoli"), `determiner` the number word of its phrase ("" if none),
    `verb_after` the word after it, `collective` whether "<herd> of" comes before. A word of either
    number is singular only after a singular determiner or before a singular verb: bare, it is a
    plural or a mass noun ("sheep grazing", "a plate with broccoli")."""
    if number == "plural" or collective:
        return True
    if number == "singular":
        return False
    return determiner not in SINGULAR_DETERMINERS and verb_after not in SINGULAR_VERBS


def listed(phrases: list[str]) -> str:
    """'a, b and c': the phrases as one English list."""
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
