"""Word -> token positions, on the tiny and the real CLIP BPE (alignments: test_p2p_alignment.py)."""

from __future__ import annotations

from typing import Any

import pytest

from clip_bpe import real_bpe, span, tiny_bpe  # noqa: F401
from imgdiff.p2p.tokens import PromptError, phrase_positions, tokenize_prompt, word_positions


def ids(tok: Any, text: str) -> list[int]:
    return tok(text, add_special_tokens=False).input_ids


CAPTIONS = [
    "A red fire hydrant, next to a bus.",
    "it's a (small) dog!  Two cats... and 3.5 zebras",
    "A man riding a skateboard down a street",
]


@pytest.mark.parametrize("which", ["tiny", "real"])
def test_pieces_concatenate_to_the_sentence_tokens(which: str, request: pytest.FixtureRequest) -> None:
    tok = request.getfixturevalue(which)
    for caption in CAPTIONS:
        prompt = tokenize_prompt(tok, caption)
        assert list(prompt.ids) == ids(tok, caption)
        positions = [pos for piece in prompt.pieces for pos in piece.positions]
        assert positions == list(range(1, 1 + len(prompt.ids)))


@pytest.mark.parametrize("which", ["tiny", "real"])
def test_phrase_positions_are_the_words_tokens(which: str, request: pytest.FixtureRequest) -> None:
    tok = request.getfixturevalue(which)
    prompt = tokenize_prompt(tok, CAPTIONS[0])
    assert phrase_positions(prompt, "fire hydrant") == span(tok, "a red", "fire hydrant")
    assert phrase_positions(prompt, "Hydrant") == span(tok, "a red fire", "hydrant")
    assert phrase_positions(prompt, "bus") == span(tok, "a red fire hydrant, next to a", "bus")  # not "."
    # words only: the comma between them is not part of the phrase
    assert phrase_positions(prompt, "hydrant next") == span(tok, "a red fire", "hydrant") + span(
        tok, "a red fire hydrant,", "next"
    )
    assert phrase_positions(prompt, "car") is None and phrase_positions(prompt, "") is None
    assert phrase_positions(prompt, "fire truck") is None and phrase_positions(prompt, "ire") is None


def test_word_positions_match_whitespace_words_exactly(tiny: Any) -> None:
    # as Prompt-to-Prompt's per-word windows match: case and punctuation count, every occurrence
    prompt = tokenize_prompt(tiny, "a dog, a Dog and a dog")
    assert word_positions(prompt, "dog") == span(tiny, "a dog, a Dog and a", "dog")
    assert word_positions(prompt, "dog,") == span(tiny, "a", "dog,")
    assert word_positions(prompt, "a") == [
        1,
        *span(tiny, "a dog,", "a"),
        *span(tiny, "a dog, a Dog and", "a"),
    ]
    assert word_positions(prompt, "Dog") == span(tiny, "a dog, a", "Dog")
    assert word_positions(prompt, "cat") == [] and word_positions(prompt, "do") == []


def test_a_tokeniser_that_does_not_split_at_words_is_refused() -> None:
    class Joining:
        """Tokenises per character, but the sentence as one token more than its words."""

        def __call__(self, texts: list[str], add_special_tokens: bool = False) -> Any:
            class Out:
                input_ids = [list(range(len(t.split()) + 1)) for t in texts]

            return Out()

    with pytest.raises(PromptError, match="^untokenizable"):
        tokenize_prompt(Joining(), "a cat")
