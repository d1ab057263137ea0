"""'a' or 'an': by the sound of the next word, as the `inflect` package hears it.

`inflect` gets right what a first-letter rule misses, both ways: "an hour", "an honest", "an heir",
"a unicorn", "a urinal", "a utensil", "a ukulele", "a euro", "a ewe", "a one-way street", "a
U-turn", "an unusual" and "an unopened" (a "u" before one consonant and a vowel is not always
"yu"), and spelled-out acronyms "an FBI agent", "an MRI", "an X-ray". What it gets wrong (pinned in
tests/test_language_articles.py): "a SUV" (an acronym with a vowel it reads as a word), "a 8-ball"
and "a 11" (digits), "an uni", "an onesie". Every word of our vocabulary is right.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING

from imgdiff.language.grammar import OPENERS

if TYPE_CHECKING:
    import inflect

_INDEFINITE_BEFORE = re.compile(r"\b(an?)(\s+)$", re.IGNORECASE)


@cache
def _engine() -> inflect.engine:
    """inflect's engine. inflect wraps its methods in `typeguard.typechecked`, which re-compiles each
    one while inflect is imported: 1-2 s on an idle machine, over 20 s on a busy one (inflect issue
    212), for argument checks our one call does not need. So the first import here runs with that
    decorator as a no-op; it is put back right after."""
    if "inflect" not in sys.modules:
        import typeguard

        checked = typeguard.typechecked
        typeguard.typechecked = _unchecked
        try:
            import inflect
        finally:
            typeguard.typechecked = checked
    import inflect

    return inflect.engine()


def _unchecked(target: Callable | None = None, **_: object) -> Callable:
    """`typeguard.typechecked` that checks nothing: the target itself, bare or called with options."""
    return target if target is not None else _unchecked


@cache
def indefinite_article(word: str) -> str:
    """'a' or 'an' before `word` (as written: case tells an acronym, "an FBI agent", from a word)."""
    return _engine().a(word).split(" ", 1)[0] if word else "a"


def with_article(noun_phrase: str) -> str:
    """'cube' -> 'a cube', 'owl' -> 'an owl'; whitespace runs to one space; a phrase that starts
    with a determiner, a number or a quantifier stays as it is ("the dog", "two cats", "3 cups")."""
    text = " ".join(noun_phrase.split())
    if not text:
        return text
    first = text.split(" ", 1)[0]
    if first.lower() in OPENERS or first[0].isdigit():
        return text
    return f"{indefinite_article(first)} {text}"


def refit_article(head: str, word: str) -> str:
    """`head` (the text before `word`) with a final "a"/"an" made to fit `word`, its case kept:
    "A " + "elephant" -> "An "."""
    indefinite = _INDEFINITE_BEFORE.search(head)
    if indefinite is None:
        return head
    a_or_an = indefinite_article(word)
    if indefinite.group(1)[0].isupper():
        a_or_an = a_or_an.capitalize()
    return head[: indefinite.start(1)] + a_or_an + indefinite.group(2)
