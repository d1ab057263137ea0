"""The refine alignments against mappers and alphas worked out by hand, on OpenAI's CLIP BPE and on the
tiny tokenizer.

`original` is Prompt-to-Prompt's: the start + text + end token ids of both prompts aligned globally
with gap 0, match 1, mismatch -1 (the score is a longest common subsequence, LCS), and of the best
alignments the one its traceback takes: walking back from the ends, at each cell it leaves the target
token unaligned if that keeps the score, else leaves the source token unaligned if that keeps it, else
pairs the two. Target positions after its end token map to the same source position, alpha 1.
Each derivation below writes M(i, j) for the LCS of the first i source and first j target tokens.
"""

from __future__ import annotations

from typing import Any

import pytest

from clip_bpe import real_bpe, span, tiny_bpe  # noqa: F401
from imgdiff.p2p.alignment import align, original_alignment, whole_word_alignment
from imgdiff.p2p.tokens import tokenize_prompt

WINDOW = 77


def tokens(tok: Any, text: str) -> list[str]:
    """The prompt's tokens as the text encoder sees them, start and end included."""
    names = tok.convert_ids_to_tokens(tok(text).input_ids)
    return [{"<|startoftext|>": "S", "<|endoftext|>": "E"}.get(n, n.removesuffix("</w>")) for n in names]


def aligned(method: str, tok: Any, source: str, target: str) -> tuple[list[int], list[float]]:
    return align(method, tok, tokenize_prompt(tok, source), tokenize_prompt(tok, target), WINDOW)


def expected(mapped: dict[int, int], new: set[int]) -> tuple[list[int], list[float]]:
    """Identity with alpha 1 everywhere, except target positions `mapped` elsewhere and `new` ones."""
    mapper = [mapped.get(j, j) for j in range(WINDOW)]
    alpha = [0.0 if j in new else 1.0 for j in range(WINDOW)]
    return mapper, alpha


# -- original, OpenAI's CLIP BPE ------------------------------------------------------------------------
def test_equal_token_counts(real: Any) -> None:
    source, target = "a photo of a cat", "a photo of a dog"
    assert tokens(real, source) == ["S", "a", "photo", "of", "a", "cat", "E"]
    assert tokens(real, target) == ["S", "a", "photo", "of", "a", "dog", "E"]
    # (7,7) E=E pair; (6,6) cat/dog: M(6,5) = 5 = M(6,6), dog left out; (6,5): M(5,5) = 5, cat left
    # out; the rest pair one to one
    assert aligned("original", real, source, target) == expected({}, {5})


def test_a_multi_token_swap_with_different_counts(real: Any) -> None:
    source, target = "a red fire hydrant on a street corner.", "a red teddy bear on a street corner."
    assert tokens(real, source) == [
        *("S", "a", "red", "fire", "hydr", "ant", "on", "a", "street", "corner", ".", "E"),
    ]
    assert tokens(real, target) == ["S", "a", "red", "teddy", "bear", "on", "a", "street", "corner", ".", "E"]
    # LCS 9. From (12,11) back: E . corner street a on pair (target 10..5 -> source 11..6); at (6,5)
    # bear: M(6,4) = 3 = M(6,5), left out; teddy likewise; then ant, hydr, fire are left out (up),
    # and red, a, S pair. Target padding from 11 on maps to source 11.. (11 is the source's end).
    mapped = {5: 6, 6: 7, 7: 8, 8: 9, 9: 10, 10: 11}
    assert aligned("original", real, source, target) == expected(mapped, {3, 4})


def test_an_insertion(real: Any) -> None:
    source, target = "a photo of a cat", "a photo of a red cat"
    assert tokens(real, target) == ["S", "a", "photo", "of", "a", "red", "cat", "E"]
    # E and cat pair (7 -> 6, 6 -> 5); at (5,6) red: M(5,5) = 5 = M(5,6), left out; the rest pair.
    # Past the target's end (7) position j maps to j: 8 -> 8 is the source's second padding token.
    assert aligned("original", real, source, target) == expected({6: 5, 7: 6}, {5})


def test_a_removal_whose_padding_lands_on_a_source_word(real: Any) -> None:
    source, target = "a photo of a big red cat", "a photo of a cat"
    assert tokens(real, source) == ["S", "a", "photo", "of", "a", "big", "red", "cat", "E"]
    # E pairs (6 -> 8), cat pairs (5 -> 7); at (7,5) red: M(6,5) = 5, red left out, big likewise;
    # a, of, photo, a, S pair. Target position 7 (its first padding) maps to source 7: "cat".
    mapper, alpha = aligned("original", real, source, target)
    assert (mapper, alpha) == expected({5: 7, 6: 8}, set())
    assert mapper[7] == 7 and tokens(real, source)[7] == "cat"


def test_a_shared_sub_token_keeps_the_source_attention(real: Any) -> None:
    source, target = "a snowboarder on a hill", "a skateboarder on a hill"
    assert tokens(real, source) == ["S", "a", "snow", "boarder", "on", "a", "hill", "E"]
    assert tokens(real, target) == ["S", "a", "skate", "boarder", "on", "a", "hill", "E"]
    # "boarder" pairs at (4,4) (M(3,3) + 1 = 3 beats M(4,3) = M(3,4) = 2); at (3,3) skate: M(3,2) = 2,
    # left out; snow left out (up). Only "skate" is new.
    assert aligned("original", real, source, target) == expected({}, {2})
    # the whole-word method treats the changed word as new in both its tokens
    assert aligned("whole-word", real, source, target) == expected({}, {2, 3})
    assert tokens(real, "a minivan parked")[2:4] == ["mini", "van"]
    assert aligned("original", real, "a van parked", "a minivan parked") == expected({3: 2, 4: 3, 5: 4}, {2})


def test_trailing_punctuation(real: Any) -> None:
    source, target = "a photo of a cat.", "a photo of a dog"
    assert tokens(real, source) == ["S", "a", "photo", "of", "a", "cat", ".", "E"]
    # E pairs (6 -> 7); at (7,6) dog: M(7,5) = 5 = M(7,6), left out; then "." and cat are left out
    # (up) and the rest pair. Target 7, its first padding, maps to 7: the source's end token.
    assert aligned("original", real, source, target) == expected({6: 7}, {5})
    assert aligned("original", real, "a dog.", "a dog!") == expected({}, {3})


def test_ties_follow_the_traceback_order(real: Any) -> None:
    source, target = "a red cat on a blue mat", "a blue mat on a red cat"
    assert tokens(real, source) == ["S", "a", "red", "cat", "on", "a", "blue", "mat", "E"]
    # LCS 5 in several ways (S a red cat E, S a blue mat E, S a on a E). From (9,9): E pairs; at
    # (8,8) cat, red, a, on are left out one by one (M(8,7) = M(8,6) = M(8,5) = M(8,4) = 4); mat and
    # blue pair (3 -> 7, 2 -> 6); at (6,2) the source's second "a" is left out (M(5,2) = 2), so the
    # target's "a" pairs with the first.
    assert aligned("original", real, source, target) == expected({2: 6, 3: 7}, {4, 5, 6, 7})
    # difflib's longest block first: "a red cat" (the earliest in the source of the two of size 3)
    assert aligned("whole-word", real, source, target) == expected({5: 1, 6: 2, 7: 3}, {1, 2, 3, 4})


# -- whole-word ----------------------------------------------------------------------------------------
def test_whole_word_end_and_padding_follow_the_source_in_order(real: Any) -> None:
    source, target = "a red fire hydrant on a street corner.", "a red teddy bear on a street corner."
    # pieces: a red | fire hydrant -> teddy bear | on a street corner . ; end 10 -> 11, padding in
    # order, capped at the last position
    mapped = {j: j + 1 for j in range(5, 76)}
    assert aligned("whole-word", real, source, target) == expected(mapped, {3, 4})


def test_whole_word_alignment_of_an_inserted_word_on_the_real_tokenizer(real: Any) -> None:
    # the classic example: the new word keeps its own attention, everything else takes the source's
    source, target = (tokenize_prompt(real, t) for t in ("a photo of a cat", "a photo of a red cat"))
    mapper, alpha = whole_word_alignment(source, target, 77)
    assert alpha[:8] == [1, 1, 1, 1, 1, 0, 1, 1]
    assert mapper[:5] == [0, 1, 2, 3, 4] and mapper[6] == 5  # "cat" moved one place right
    assert mapper[7] == 6 and mapper[8] == 7  # end token -> end token, then padding in order
    assert mapper[76] == 75 and alpha[8:] == [1.0] * 69


def test_whole_word_alignment_keeps_multi_token_words_whole(tiny: Any) -> None:
    # "xylophone" and "zebra" are not in the tiny vocabulary: several byte-level tokens each
    source = tokenize_prompt(tiny, "a xylophone on the table")
    target = tokenize_prompt(tiny, "a xylophone and a zebra on the table")
    xylophone = span(tiny, "a", "xylophone")
    assert len(xylophone) > 3
    mapper, alpha = whole_word_alignment(source, target, 77)
    assert [mapper[p] for p in xylophone] == xylophone and all(alpha[p] == 1 for p in xylophone)
    new = span(tiny, "a xylophone", "and a zebra")
    assert len(new) > 4 and all(alpha[p] == 0 for p in new)  # zebra's last byte "a" is not the word "a"
    on_the_table = span(tiny, "a xylophone and a zebra", "on the table")
    assert [mapper[p] for p in on_the_table] == span(tiny, "a xylophone", "on the table")
    assert all(alpha[p] == 1 for p in on_the_table)


def test_a_changed_multi_token_word_is_new_in_every_token(tiny: Any) -> None:
    source, target = (tokenize_prompt(tiny, t) for t in ("a zebra on the table", "a giraffe on the table"))
    mapper, alpha = whole_word_alignment(source, target, 77)
    assert all(alpha[p] == 0 for p in span(tiny, "a", "giraffe"))
    assert [mapper[p] for p in span(tiny, "a giraffe", "on the table")] == span(
        tiny, "a zebra", "on the table"
    )
    # end and padding follow the source's end, which sits elsewhere when lengths differ
    assert mapper[len(target.ids) + 1] == len(source.ids) + 1


# -- original, the tiny tokenizer (a byte-level vocabulary: many shared sub-tokens) -------------------
def test_tiny_equal_counts_with_a_shared_sub_token(tiny: Any) -> None:
    source, target = "a cat on the table", "a bat on the table"
    assert tokens(tiny, source) == ["S", "a", "c", "at", "on", "the", "ta", "bl", "e", "E"]
    assert tokens(tiny, target) == ["S", "a", "b", "at", "on", "the", "ta", "bl", "e", "E"]
    assert aligned("original", tiny, source, target) == expected({}, {2})
    assert aligned("whole-word", tiny, source, target) == expected({}, {2, 3})


def test_tiny_multi_token_swap_with_different_counts(tiny: Any) -> None:
    source, target = "a zebra on the table", "a cat on the table"
    assert tokens(tiny, source) == ["S", "a", "z", "e", "b", "r", "a", "on", "the", "ta", "bl", "e", "E"]
    # on the ta bl e E pair (target 4..9 -> source 7..12); at (7,4) at and c are left out; at (7,2)
    # the zebra's last token "a" is left out (M(6,2) = 2) and the target's "a" pairs with the
    # source's word "a". The target is 3 shorter: its padding 10, 11 lands on "bl" and "e".
    mapped = {4: 7, 5: 8, 6: 9, 7: 10, 8: 11, 9: 12}
    mapper, alpha = aligned("original", tiny, source, target)
    assert (mapper, alpha) == expected(mapped, {2, 3})
    assert [tokens(tiny, source)[mapper[j]] for j in (10, 11)] == ["bl", "e"]


def test_tiny_insertion_and_removal(tiny: Any) -> None:
    short, long = "a cat on the table", "a red cat on the table"
    # insertion: every token pairs one place left except "red" (at (2,3): M(2,2) = 2, left out)
    assert aligned("original", tiny, short, long) == expected({j: j - 1 for j in range(3, 11)}, {2})
    # removal: "red" is left out of the source (up); the target's padding 10 maps to the source's end
    assert aligned("original", tiny, long, short) == expected({j: j + 1 for j in range(2, 10)}, set())


def test_tiny_trailing_punctuation(tiny: Any) -> None:
    source, target = "a cat on the table", "a dog on the table."
    assert tokens(tiny, target) == ["S", "a", "dog", "on", "the", "ta", "bl", "e", ".", "E"]
    # E pairs (9 -> 9); at (9,9) "." is left out (M(9,8) = 7); e bl ta the on pair one place right;
    # dog is left out, then at and c (up); a and S pair
    assert aligned("original", tiny, source, target) == expected({j: j + 1 for j in range(3, 8)}, {2, 8})


# -- the algorithm on plain sequences ----------------------------------------------------------------
def test_original_alignment_on_symbols() -> None:
    # x = S a b E, y = S b a E. The table (rows: x prefixes of 0..4, columns: y prefixes of 0..4):
    #   M(1, 1..4) = 1; M(2, 3) = 2 (a = a after S); M(3, 2) = 2 (b = b after S); M(3, 3) = 2;
    #   M(4, 4) = M(3, 3) + 1 = 3 (E = E).
    # Traceback: (4,4) pair E; (3,3): M(3,2) = 2 = M(3,3), y's "a" left out; (3,2): M(3,1) = 1 and
    # M(2,2) = 1 are below 2, so b pairs with b; (2,1): M(1,1) = 1 = M(2,1), x's "a" left out;
    # (1,1) S pairs. Position 2 is new (it keeps its own index); 4 and 5 follow the window.
    mapper, alpha = original_alignment([0, 1, 2, 9], [0, 2, 1, 9], 6)
    assert mapper == [0, 2, 2, 3, 4, 5] and alpha == [1.0, 1.0, 0.0, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="does not fit"):
        original_alignment(list(range(8)), [0, 1], 6)
