"""What a caller asks of `generate_pairs` and what it gets back (no torch here)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class P2PConfig:
    """One call's generation and editing settings; the defaults are the paper's (METHOD.md 2), with
    Prompt-to-Prompt's own alignment and step rules (`alignment.py`, `schedule.py`)."""

    steps: int = 50
    guidance: float = 7.5  # <= 1: guidance off (Turbo); only the conditional half is edited when on
    height: int = 1024
    width: int = 1024
    alignment: str = "original"  # or "whole-word"
    step_rule: str = "original"  # or "proportional": how a window's fractions become steps
    # step windows: a fraction f is [0, f); a (start, end) pair is [start, end)
    cross_replace: float | tuple[float, float] = 1.0  # cross-attention refine
    # per-word windows for the target prompt's words written exactly so: ((word, window), ...); none
    # here (the stage's paper preset passes the research code's {"confetti": 0.8})
    cross_replace_words: tuple[tuple[str, float | tuple[float, float]], ...] = ()
    self_replace: float | tuple[float, float] = 0.4  # self-attention replacement ...
    # ... in layers with at most this many queries; None: from the image width, as the SDXL port
    # (ceil(width / 32) ** 2: 32x32 at 1024 px)
    self_max_queries: int | None = None
    prior: bool = True  # collect the changed words' attention maps
    # the prior is taken at image size / this (layers of that resolution); a model without attention
    # there uses its nearest resolution (the tiny test pipelines do)
    prior_res_div: int = 32
    edit: bool = True  # False: plain two-image generation (same initial latent)
    # local blend (`blend.py`): after each step from step int(blend_start * steps), image b's latent
    # takes image a's outside the changed words' maps (the prior's, each scaled to [0, 1]) above
    # blend_threshold; needs `edit`, works with the prior on or off
    local_blend: bool = False
    blend_threshold: float = 0.3
    blend_start: float = 0.0


@dataclass(frozen=True)
class PairRequest:
    prompt_a: str  # source caption (image a)
    prompt_b: str  # edited caption (image b)
    seed: int  # the record's seed: the pair's shared initial latent comes from it alone
    words_a: str = ""  # the changed object phrase in prompt_a (for the prior), e.g. "fire hydrant"
    words_b: str = ""  # ... in prompt_b; empty for a removal (channel 1 of the prior is then zero)


@dataclass
class PairImages:
    a: np.ndarray  # (h, w, 3) uint8 RGB
    b: np.ndarray
    # float16 (2, h', w'): the changed words' attention in prompt a over image a (0) and in prompt b
    # over image b (1), each scaled to [0, 1]; None when the prior is off, editing is off, or the
    # words are not in their prompt
    prior: np.ndarray | None
    finite: bool  # False when any NaN/inf appeared in the latents or decoded images
    blanked: bool = False  # True when the pipeline's safety checker replaced image a or b with black
    # bool (h, w) at the latent's size: the last step's local-blend mask (outside it b's latent is a's
    # bit for bit); None when local blend is off, has not started, or the words are not in their prompt
    blend_mask: np.ndarray | None = None
