"""Caption text: hygiene for captions from files and from models alike, and the words of a text."""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")
_QUOTES = "\"'`“”‘’«»„"
_DOUBLE_QUOTES = '"“”«»„'


class BadCaption(ValueError):
    """A caption that cannot be used; the message is a reason "<code>: <detail>"."""


def clean_caption(value: object) -> str:
    """Caption hygiene: NFKC, control characters and runs of whitespace to one space, wrapping
    quotes stripped. Raises BadCaption (`not_text`, `empty_caption`)."""
    if not isinstance(value, str):
        raise BadCaption(f"not_text: caption is {type(value).__name__}, not text")
    text = unicodedata.normalize("NFKC", value)
    text = "".join(" " if unicodedata.category(c).startswith("C") else c for c in text)
    text = " ".join(text.split())
    # A wrapping pair of quotes, not a quoted word at either end: 'a sign reading "stop"'.
    while len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        if any(c in _DOUBLE_QUOTES for c in text[1:-1]):
            break
        text = text[1:-1].strip()
    if not words(text):
        raise BadCaption(f"empty_caption: no words in {value[:40]!r}")
    return text


def words(text: str) -> list[str]:
    """Lower-case words, punctuation dropped (apostrophes inside a word kept: "man's")."""
    return _WORD.findall(text.lower().replace("’", "'"))
