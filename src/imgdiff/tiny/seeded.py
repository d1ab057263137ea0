"""Deterministic random weights for the checkpoints built in code: seed 0, with the caller's global
random state untouched."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def fixed_seed() -> Iterator[None]:
    """Deterministic weights without disturbing the caller's global random state."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        yield


def save_random(model_class: Any, config: Any, preprocessor: Any, out: Path) -> Path:
    """A `model_class` of `config` with deterministic random weights (the caller's random state
    untouched), saved with its processor or tokenizer in `out` like a hub checkpoint (the tiny
    CLIP, BLIP and text LM)."""
    with fixed_seed():
        model = model_class(config).eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    preprocessor.save_pretrained(out)
    return out
