"""Prompt-to-Prompt image pairs on stock diffusers pipelines, at the cost of plain generation.

`generate_pairs(model_or_pipe, requests, config)` makes every requested pair in ONE pipeline call: the
two prompts of a pair are denoised side by side from the same initial latent (drawn on the CPU from
the pair's seed, so it does not depend on the device or on the other pairs in the call), while
attention processors installed through `set_attn_processor` edit the target image's attention from
the source's (refine on cross-attention, replacement on self-attention, `processor.py`) and collect
the changed words' attention maps (the prior, `prior.py`). With `local_blend` the step callback
keeps image b's latent equal to image a's outside those words' maps after each step (`blend.py`).
The pipeline's own `__call__` runs unchanged; its processors are restored afterwards, also on error.

Importing this package does not import torch; the engine loads on first use.
"""

from __future__ import annotations

from typing import Any

from imgdiff.p2p.requests import P2PConfig, PairImages, PairRequest
from imgdiff.p2p.tokens import PromptError

__all__ = ["P2PConfig", "PairImages", "PairRequest", "PromptError", "generate_pairs", "prompt_tokens"]


def generate_pairs(model_or_pipe: Any, requests: list[PairRequest], config: P2PConfig) -> list[PairImages]:
    """All `requests` in one pipeline call (a `DiffusionModel` or a diffusers SD/SDXL pipeline)."""
    from imgdiff.p2p.pairs import generate_pairs as run

    return run(model_or_pipe, requests, config)


def prompt_tokens(model_or_pipe: Any, text: str) -> int:
    """The prompt's text tokens without start/end tokens (75 fit CLIP's window)."""
    from imgdiff.p2p.pairs import prompt_tokens as count

    return count(model_or_pipe, text)
