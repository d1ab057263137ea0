"""An edit as an editing instruction: "replace the cat with a dog", "remove the cat".

Instruction editors (InstructPix2Pix, FLUX.1 Kontext, Qwen-Image-Edit) were trained on imperative
sentences of this shape. The old object is named with "the" (it is in the photo); the new one with
its indefinite article, or none when it is plural or already has a determiner or number ("two
dogs", "some apples"). Articles and number come from the language layer (`imgdiff.language`).
"""

from __future__ import annotations

from imgdiff.language.articles import indefinite_article
from imgdiff.language.grammar import DETERMINERS, MANY, NUMBERS
from imgdiff.language.vocabulary import forms
from imgdiff.record import Edit


def instruction(edit: Edit, kind: str) -> str:
    """The instruction for `edit`; a removal when the kind says so or there is no new object."""
    old = _definite(edit.old)
    if kind == "removal" or not edit.new.strip():
        return f"remove {old}"
    return f"replace {old} with {_indefinite(edit.new)}"


def _definite(phrase: str) -> str:
    """'the cat' for 'cat', 'a cat', 'one cat' or 'the cat'; 'the two cats' for 'two cats'; a
    quantity word keeps the phrase as it is ('some cats', 'a group of people' stays 'the group ...')."""
    words = phrase.strip().split()
    if words and words[0].lower() in MANY:
        return " ".join(words)
    if words and words[0].lower() in DETERMINERS:
        words = words[1:]
    return " ".join(["the", *words])


def _indefinite(phrase: str) -> str:
    """'a dog', 'an apple', 'dogs', 'two dogs', 'the dog' as given."""
    phrase = phrase.strip()
    first = phrase.split()[0].lower()
    if first in DETERMINERS or first in NUMBERS or first in MANY:
        return phrase
    known = forms().get(phrase.lower())
    if known is not None and known[1] == "plural":
        return phrase
    if known is None and _looks_plural(phrase):
        return phrase
    return f"{indefinite_article(phrase)} {phrase}"


def _looks_plural(phrase: str) -> bool:
    """A phrase outside the vocabulary ending in a plural 's' (not 'ss', 'us', 'is')."""
    last = phrase.split()[-1].lower()
    return last.endswith("s") and not last.endswith(("ss", "us", "is"))
