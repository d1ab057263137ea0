"""Edited steps and layers: the controller's per-step decisions against Prompt-to-Prompt's formulas,
written out here from the original code's definitions, for every step count and fraction of the table."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch

from imgdiff.p2p.processor import P2PController
from imgdiff.p2p.schedule import as_window, cross_steps, self_max_queries_from_size, self_steps

STEPS = (1, 2, 4, 20, 50)
FRACTIONS = (0.0, 0.1, 0.3, 0.4, 0.6, 0.9, 1.0)
TOKENS = 8


def original_cross(fraction: float, steps: int) -> list[int]:
    """The original keeps per-token time weights of steps + 1 rows: row r is 1 for r in
    [int(0 * rows), int(fraction * rows)); denoising step i reads row i."""
    rows = steps + 1
    weights = [1 if int(0.0 * rows) <= r < int(fraction * rows) else 0 for r in range(rows)]
    return [i for i in range(steps) if weights[i] == 1]


def original_self(fraction: float, steps: int) -> list[int]:
    """The original replaces self-attention while int(steps * 0) <= step < int(steps * fraction)."""
    return [i for i in range(steps) if int(steps * 0.0) <= i < int(steps * fraction)]


def proportional(fraction: float, steps: int) -> list[int]:
    """Step i is within the first `fraction` of the steps: i < fraction * steps, in exact decimals."""
    return [i for i in range(steps) if i < Fraction(str(fraction)) * steps]


def controller(rule: str, steps: int, cross: float, self_: float, words: list | None = None) -> P2PController:
    return P2PController(
        [list(range(TOKENS))],
        [[1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0]],
        guidance=True,
        steps=steps,
        step_rule=rule,
        cross_replace=as_window(cross),
        self_replace=as_window(self_),
        self_max_queries=64,
        device="cpu",
        dtype=torch.float32,
        word_windows=[words or []],
    )


def edited(ctl: P2PController) -> tuple[list[int], list[int]]:
    """The steps at which the controller edits cross-attention and replaces self-attention."""
    cross, self_ = [], []
    for step in range(ctl.steps):
        ctl.step = step
        if ctl.cross_phase() is not None:
            cross.append(step)
        if ctl.self_edit(64):
            self_.append(step)
    return cross, self_


@pytest.mark.parametrize("steps", STEPS)
def test_the_table_of_edited_steps_follows_the_originals_formulas(steps: int) -> None:
    for fraction in FRACTIONS:
        ctl = controller("original", steps, fraction, fraction)
        assert edited(ctl) == (original_cross(fraction, steps), original_self(fraction, steps)), fraction
        ctl = controller("proportional", steps, fraction, fraction)
        assert edited(ctl) == (proportional(fraction, steps), proportional(fraction, steps)), fraction


def test_notable_cells_of_the_table() -> None:
    # the paper: 50 steps, cross 1.0, self 0.4 -> cross at every step, self at 0-19 under both rules
    assert edited(controller("original", 50, 1.0, 0.4)) == (list(range(50)), list(range(20)))
    assert edited(controller("proportional", 50, 1.0, 0.4)) == (list(range(50)), list(range(20)))
    # 4 steps (turbo): the original replaces self-attention at step 0 only, proportional at 0-1
    assert edited(controller("original", 4, 0.4, 0.4)) == ([0, 1], [0])  # int(0.4 * 5) = 2, int(1.6) = 1
    assert edited(controller("proportional", 4, 0.4, 0.4)) == ([0, 1], [0, 1])
    # 2 steps: no self-attention replacement at all; 1 step: cross 0.4 edits nothing (int(0.8) = 0)
    assert edited(controller("original", 2, 1.0, 0.4)) == ([0, 1], [])
    assert edited(controller("original", 1, 0.4, 0.4)) == ([], [])
    # float truncation as the original does it: 0.3 * 21 = 6.3 -> 6 steps; 0.9 * 51 = 45.9 -> 45
    assert edited(controller("original", 20, 0.3, 0.3))[0] == list(range(6))
    assert edited(controller("original", 50, 0.9, 0.9)) == (list(range(45)), list(range(45)))


def test_start_end_windows() -> None:
    # [0.2, 0.6) of 20 steps: cross rows int(0.2 * 21) = 4 .. int(0.6 * 21) = 12; self int(4.0) ..
    # int(12.000000000000002) = 12
    ctl = controller("original", 20, (0.2, 0.6), (0.2, 0.6))
    assert edited(ctl) == (list(range(4, 12)), list(range(4, 12)))
    assert cross_steps("original", (0.5, 1.0), 4) == range(2, 4)  # int(2.5) = 2 .. int(5) capped at 4
    assert self_steps("original", (0.5, 1.0), 4) == range(2, 4)
    assert self_steps("proportional", (0.25, 0.6), 10) == range(3, 6)  # 2.5 <= i < 6
    for bad in ((0.6, 0.2), (0.0, 1.5), (-0.1, 0.5), (0.1, 0.2, 0.3)):
        with pytest.raises(ValueError, match="step window"):
            as_window(bad)
    with pytest.raises(ValueError, match="unknown step rule"):
        cross_steps("ceil", (0.0, 1.0), 4)


def test_per_word_windows_override_the_default_for_their_tokens() -> None:
    # {"default_": 1.0, "<word>": 0.8} at 50 steps: the word's tokens 3 and 4 until int(0.8 * 51) = 40
    ctl = controller("original", 50, 1.0, 0.4, words=[([3, 4], (0.0, 0.8))])
    weights = ctl.cross_weights(50)[:, 0]
    assert weights[:40].eq(1).all() and weights[40:, [3, 4]].eq(0).all() and weights[40:, 5].eq(1).all()
    # two phases: every aligned token, then all but the word; the new token 2 has alpha 0 in both
    assert len(ctl.phases) == 2
    assert ctl.step_phases[0] is ctl.phases[0] and ctl.step_phases[40] is ctl.phases[1]
    assert ctl.phases[1].alphas[0].tolist() == [1, 1, 0, 0, 0, 1, 1, 1]
    # a window that starts later: the word is plain first and edited from int(0.5 * 51) = 25 on
    ctl = controller("original", 50, 1.0, 0.4, words=[([5], (0.5, 1.0))])
    assert [ctl.step_phases[s].alphas[0, 5].item() for s in (0, 24, 25, 49)] == [0, 0, 1, 1]
    # nothing edited at a step: no cross phase (the layer runs stock)
    ctl = controller("original", 4, 0.0, 0.0, words=[([5], (0.5, 1.0))])
    assert edited(ctl) == ([2, 3], [])


def test_self_attention_layer_limit_from_the_image_width() -> None:
    # the SDXL port: attn_res = (ceil(width / 32), ceil(height / 32)), limit attn_res[0] ** 2
    assert self_max_queries_from_size(1024) == 1024 and self_max_queries_from_size(512) == 256
    assert self_max_queries_from_size(1000) == 32**2 and self_max_queries_from_size(64) == 4
    assert self_max_queries_from_size(768) == 24**2
    ctl = controller("original", 4, 1.0, 1.0)
    assert ctl.self_edit(64) and not ctl.self_edit(65)
