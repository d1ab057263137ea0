"""Refine alignment: which source token each target token takes its cross-attention from.

For the text window of `length` positions (77 for CLIP; position 0 is the start token) an alignment
gives, per target position j, `mapper[j]` (a source position) and `alpha[j]`: 1 when j takes the
source's attention column `mapper[j]`, 0 when j is new and keeps its own (then `mapper[j]` is j and
does not matter). Two methods (the `generate` setting `alignment`):

`original`: Prompt-to-Prompt's own refine alignment (google/prompt-to-prompt `seq_aligner`, copied
unchanged into the SDXL port and Data-Juicer). The token ids of both prompts WITH their start and end
tokens are aligned globally (Needleman-Wunsch) with gap 0, match 1, mismatch -1, so the score is the
length of a longest common subsequence and every aligned pair is a match. Of the alignments with that
score it takes the one its traceback finds: walking back from the two ends, a step that keeps the
score prefers, in this order, leaving the target token unaligned, leaving the source token unaligned,
and only then matching the two. Tokens are aligned one by one, so a sub-token shared by an old and a
new word ("snow|boarder" -> "skate|boarder") keeps the source's attention. Past the target's end
token, position j maps to source position j (the same place, whatever the source has there: its
padding, its end token, or, when the target is shorter, its last words), alpha 1.

`whole-word`: imgdiff's first method (`tokens.py` pieces). Pieces (a word, or a run of punctuation)
are aligned with difflib's matcher, a piece being the tuple of its token ids, so a word of several
tokens aligns as a whole or not at all: a changed word is new in every token. The start token maps to
the start token, and the end token and the padding after it follow the source's end token and padding
in order (capped at the window's last position).

Worked examples with token positions are in docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import difflib
from typing import Any

from imgdiff.p2p.tokens import PromptTokens

ALIGNMENTS = ("original", "whole-word")
Alignment = tuple[list[int], list[float]]  # (mapper, alpha) over the text window


def align(method: str, tokenizer: Any, source: PromptTokens, target: PromptTokens, length: int) -> Alignment:
    """The refine alignment of `target` onto `source` by `method` (one of `ALIGNMENTS`)."""
    if method == "original":
        # only equality counts: stand-ins that match no text token if a tokenizer names none
        bos, eos = (getattr(tokenizer, f"{t}_token_id", None) for t in ("bos", "eos"))
        bos, eos = (-1 if bos is None else int(bos)), (-2 if eos is None else int(eos))
        return original_alignment([bos, *source.ids, eos], [bos, *target.ids, eos], length)
    if method == "whole-word":
        return whole_word_alignment(source, target, length)
    raise ValueError(f"unknown alignment {method!r}; expected one of {', '.join(ALIGNMENTS)}")


# -- original ----------------------------------------------------------------------------------------
_GAP, _MATCH, _MISMATCH = 0, 1, -1
_SKIP_TARGET, _SKIP_SOURCE, _PAIR = 1, 2, 3  # traceback moves, in the order ties are broken


def original_alignment(source_ids: list[int], target_ids: list[int], length: int) -> Alignment:
    """Prompt-to-Prompt's alignment of two token sequences that include their start and end tokens."""
    if len(source_ids) > length or len(target_ids) > length:
        raise ValueError(f"a prompt of more than {length} tokens does not fit the text window")
    moves = _global_alignment_moves(source_ids, target_ids)
    mapper, alpha = list(range(length)), [1.0] * length
    for j, i in _target_to_source(moves, len(source_ids), len(target_ids)):
        if i is None:
            alpha[j] = 0.0
        else:
            mapper[j] = i
    # positions after the target's end token stay j -> j with alpha 1
    return mapper, alpha


def _global_alignment_moves(x: list[int], y: list[int]) -> list[list[int]]:
    """The traceback table of the global alignment of x (source) and y (target): for each cell (i, j),
    the move that reaches it from the best of its three neighbours."""
    score = [[0] * (len(y) + 1) for _ in range(len(x) + 1)]
    moves = [[0] * (len(y) + 1) for _ in range(len(x) + 1)]
    for j in range(1, len(y) + 1):
        score[0][j], moves[0][j] = j * _GAP, _SKIP_TARGET
    for i in range(1, len(x) + 1):
        score[i][0], moves[i][0] = i * _GAP, _SKIP_SOURCE
    for i in range(1, len(x) + 1):
        for j in range(1, len(y) + 1):
            skip_target = score[i][j - 1] + _GAP
            skip_source = score[i - 1][j] + _GAP
            pair = score[i - 1][j - 1] + (_MATCH if x[i - 1] == y[j - 1] else _MISMATCH)
            best = max(skip_target, skip_source, pair)
            score[i][j] = best
            # ties: leaving the target token out wins, then leaving the source token out
            if best == skip_target:
                moves[i][j] = _SKIP_TARGET
            elif best == skip_source:
                moves[i][j] = _SKIP_SOURCE
            else:
                moves[i][j] = _PAIR
    return moves


def _target_to_source(moves: list[list[int]], i: int, j: int) -> list[tuple[int, int | None]]:
    """Walk the traceback from (i, j) to (0, 0): (target position, source position or None)."""
    pairs: list[tuple[int, int | None]] = []
    while i > 0 or j > 0:
        move = moves[i][j]
        if move == _PAIR:
            i, j = i - 1, j - 1
            pairs.append((j, i))
        elif move == _SKIP_TARGET:
            j -= 1
            pairs.append((j, None))
        else:
            i -= 1
    return pairs[::-1]


# -- whole-word --------------------------------------------------------------------------------------
def whole_word_alignment(source: PromptTokens, target: PromptTokens, length: int) -> Alignment:
    """imgdiff's piece-level alignment (see the module docstring)."""
    mapper = list(range(length))
    alpha = [1.0] * length
    for piece in target.pieces:
        for pos in piece.positions:
            alpha[pos] = 0.0
    matcher = difflib.SequenceMatcher(
        a=[p.ids for p in source.pieces], b=[p.ids for p in target.pieces], autojunk=False
    )
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            src, tgt = source.pieces[block.a + k], target.pieces[block.b + k]
            for offset, pos in enumerate(tgt.positions):
                mapper[pos], alpha[pos] = src.start + offset, 1.0
    # The end token and the padding after it follow the source's end and padding, in order.
    source_end, target_end = len(source.ids) + 1, len(target.ids) + 1
    for pos in range(target_end, length):
        mapper[pos] = min(source_end + pos - target_end, length - 1)
    return mapper, alpha
