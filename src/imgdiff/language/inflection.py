"""Forms of one word, from lemminflect (which ships its data): plurals, lemmas, "same noun"."""

from __future__ import annotations

from functools import cache


def plural_of(phrase: str) -> str:
    """The plural of a phrase: its last word inflected ("coffee table" -> "coffee tables")."""
    from lemminflect import getInflection

    head, _, last = phrase.rpartition(" ")
    inflected = getInflection(last, tag="NNS")
    return f"{head} {inflected[0]}".strip() if inflected else f"{phrase}s"


def same_noun(a: str, b: str) -> bool:
    """Whether two words are one noun up to number ("dog", "dogs")."""
    return a == b or noun_lemma(a) == noun_lemma(b)


@cache
def noun_lemma(word: str) -> str:
    from lemminflect import getLemma

    lemmas = getLemma(word, upos="NOUN")
    return lemmas[0] if lemmas else word


@cache
def lemmas(word: str) -> frozenset[str]:
    """Every lemma of the word, of any part of speech, and the word itself."""
    from lemminflect import getAllLemmas

    return frozenset({word} | {lemma for found in getAllLemmas(word).values() for lemma in found})
