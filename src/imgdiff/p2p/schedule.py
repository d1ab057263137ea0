"""Which denoising steps and layers Prompt-to-Prompt edits: step windows, step rules, the layer limit
(and the step local blend starts at).

A window is a `[start, end)` pair of fractions of the run; a single fraction f means `[0, f)`. Step i
(0-based, of n) is edited when it falls in the window as the step rule counts it (the `generate`
setting `step_rule`):

- `original`, as Prompt-to-Prompt's code counts (google/prompt-to-prompt and the SDXL port):
  cross-attention: `int(start * (n + 1)) <= i < int(end * (n + 1))` (its per-token time weights have
  n + 1 rows, of which the n steps read the first n); self-attention: `int(n * start) <= i <
  int(n * end)`. Both truncate, in float arithmetic as Python does it. At 50 steps the paper's 1.0
  and 0.4 edit cross-attention at every step and self-attention at steps 0-19; at 4 steps 0.4 edits
  self-attention at step 0 only, at 2 steps at none.
- `proportional`, imgdiff's first rule: cross and self alike, `start * n <= i < end * n` (the first
  fraction f of the steps: 0.4 of 4 steps is steps 0 and 1), counted without float noise.

Per-word cross-attention windows (the original's `{"default_": 1.0, "<word>": 0.8}`): the target
prompt's tokens of every whitespace word written exactly as `<word>` follow that word's window
instead of the default one (P2P's time weights are per target token).

Self-attention is replaced only in layers with at most `self_max_queries` queries. The SDXL port
derives it from the image size: `attn_res = (ceil(width / 32), ceil(height / 32))` and layers with
at most `attn_res[0] ** 2` queries (its width only: 32x32 = 1024 at 1024 px, 16x16 at 512 px).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

STEP_RULES = ("original", "proportional")
Window = tuple[float, float]


def as_window(value: float | Sequence[float]) -> Window:
    """A fraction f as `(0, f)`; a `[start, end)` pair as is. Raises ValueError on anything else."""
    if isinstance(value, int | float):
        start, end = 0.0, float(value)
    elif len(value) == 2:
        start, end = float(value[0]), float(value[1])
    else:
        raise ValueError(f"a step window is a fraction or a [start, end) pair, got {list(value)}")
    if not 0 <= start <= end <= 1:
        raise ValueError(f"a step window needs 0 <= start <= end <= 1, got [{start}, {end})")
    return start, end


def cross_steps(rule: str, window: Window, steps: int) -> range:
    """The steps (of `steps`) whose cross-attention a token with `window` has edited."""
    start, end = window
    if rule == "original":
        rows = steps + 1  # the original's time weights have one row more than there are steps
        return range(int(start * rows), min(int(end * rows), steps))
    return _proportional(rule, window, steps)


def self_steps(rule: str, window: Window, steps: int) -> range:
    """The steps (of `steps`) whose self-attention is replaced."""
    start, end = window
    if rule == "original":
        return range(int(steps * start), int(steps * end))
    return _proportional(rule, window, steps)


def _proportional(rule: str, window: Window, steps: int) -> range:
    if rule != "proportional":
        raise ValueError(f"unknown step rule {rule!r}; expected one of {', '.join(STEP_RULES)}")
    # round first: 0.14 * 50 is 7.000000000000001, which covers 7 steps, not 8
    return range(*(math.ceil(round(f * steps, 9)) for f in window))


def self_max_queries_from_size(width: int) -> int:
    """The SDXL port's self-attention layer limit for an image `width` pixels wide."""
    return math.ceil(width / 32) ** 2


def blend_start_step(start: float, steps: int) -> int:
    """The first step (0-based, of `steps`) whose latents local blend mixes: the original's
    `start_blend` (a step counter that must exceed int(start * steps)) counted from 0."""
    return int(start * steps)
