"""Prompts as CLIP token positions: which tokens a word occupies (the alignments are in `alignment.py`).

A prompt is tokenised piece by piece: each whitespace word, with leading and trailing punctuation split
off as pieces of their own (so "hydrant." matches "hydrant"). CLIP's pre-tokeniser splits at whitespace
and at letter/punctuation boundaries anyway, so the pieces' tokens concatenate to the sentence's tokens;
that is checked, and a piece the tokeniser would not split there stays joined to its word.

Positions count the start token: the first text token is position 1, as in the text encoder's input.
Both SDXL tokenisers produce the same positions (they differ only in the padding token), so positions
from `pipe.tokenizer` hold for every cross-attention layer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# leading punctuation, the word itself, trailing punctuation
_WORD = re.compile(r"^(\W*)(.*?)(\W*)$", re.DOTALL)


class PromptError(ValueError):
    """A prompt Prompt-to-Prompt cannot handle; the message is the record's rejection reason
    ("<code>: <detail>"). `index` is the position of the request in the call, when known."""

    def __init__(self, reason: str, index: int | None = None) -> None:
        super().__init__(reason)
        self.index = index


@dataclass(frozen=True)
class Piece:
    text: str  # lower-case; a word without its punctuation, or a run of punctuation
    ids: tuple[int, ...]  # its token ids
    start: int  # position of its first token (the start token is position 0)
    is_word: bool
    word: int  # index of the whitespace word it belongs to

    @property
    def positions(self) -> range:
        return range(self.start, self.start + len(self.ids))


@dataclass(frozen=True)
class PromptTokens:
    text: str
    ids: tuple[int, ...]  # the text's tokens without start/end tokens
    pieces: tuple[Piece, ...]
    words: tuple[str, ...]  # the whitespace words as written


def text_token_ids(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    return [list(ids) for ids in tokenizer(texts, add_special_tokens=False).input_ids]


def window(tokenizer: Any) -> int:
    """Text tokens that fit the encoder's window (75 for CLIP: 77 minus start and end)."""
    return int(tokenizer.model_max_length) - 2


def tokenize_prompt(tokenizer: Any, text: str) -> PromptTokens:
    """The prompt's token ids and its pieces with their positions."""
    words = text.split()
    splits: list[list[tuple[str, bool]]] = []  # per word: (piece, is_word)
    for word in words:
        match = _WORD.match(word)
        assert match is not None  # the pattern matches any string
        lead, core, trail = match.groups()
        split = [(lead, False), (core, True), (trail, False)] if core else [(word, False)]
        splits.append([(p, is_word) for p, is_word in split if p])
    texts = list(dict.fromkeys(words + [p for split in splits for p, _ in split]))
    encoded = dict(zip(texts, text_token_ids(tokenizer, texts), strict=True)) if texts else {}
    sentence = text_token_ids(tokenizer, [text])[0]

    pieces: list[Piece] = []
    position = 1
    for index, (word, split) in enumerate(zip(words, splits, strict=True)):
        if sum((encoded[p] for p, _ in split), []) != encoded[word]:
            split = [(word, True)]  # the tokeniser joins them here: keep the word whole
        for piece, is_word in split:
            ids = tuple(encoded[piece])
            name = (normalize_words(piece) or [piece.lower()])[0] if is_word else piece.lower()
            pieces.append(Piece(name, ids, position, is_word, index))
            position += len(ids)
    joined = [i for piece in pieces for i in piece.ids]
    if joined != sentence:
        raise PromptError(f"untokenizable: {text!r} does not tokenise word by word")
    return PromptTokens(text=text, ids=tuple(sentence), pieces=tuple(pieces), words=tuple(words))


def normalize_words(phrase: str) -> list[str]:
    """Lower-case words without surrounding punctuation, as pieces are compared."""
    words = []
    for word in phrase.lower().split():
        match = _WORD.match(word)
        assert match is not None
        words.append(match.group(2) or word)
    return [w for w in words if w]


def phrase_positions(prompt: PromptTokens, phrase: str) -> list[int] | None:
    """Token positions of the first occurrence of `phrase` (whole words, case and surrounding
    punctuation ignored); None when it does not occur or is empty."""
    wanted = normalize_words(phrase)
    words = [p for p in prompt.pieces if p.is_word]
    if not wanted:
        return None
    for i in range(len(words) - len(wanted) + 1):
        if [w.text for w in words[i : i + len(wanted)]] == wanted:
            return [pos for w in words[i : i + len(wanted)] for pos in w.positions]
    return None


def word_positions(prompt: PromptTokens, word: str) -> list[int]:
    """Token positions of every whitespace word written exactly as `word` (case and punctuation
    count, as Prompt-to-Prompt's per-word windows match words); empty when there is none."""
    hits = {i for i, w in enumerate(prompt.words) if w == word}
    return [pos for piece in prompt.pieces if piece.word in hits for pos in piece.positions]
