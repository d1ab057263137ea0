"""With local blend off, `generate_pairs` gives today's pairs bit for bit.

The digests below were recorded on the engine before local blend existed (tiny SD 1.5 and SDXL, two
pairs in one call, one torch thread). Float results depend on the CPU's instruction set and the
thread count, so each run first makes the stock pipeline's images from the same latents (code local
blend cannot touch) and compares them with their digest recorded alongside: on another platform the
comparison would say nothing, and the test skips with that reason instead of failing.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pytest
import torch

from imgdiff.p2p import P2PConfig, generate_pairs
from p2p_reference import one_torch_thread, tiny_pipeline  # noqa: F401
from test_p2p_pairs import PAIRS, SMALL, uint8

# family -> (stock pipeline images, P2P images and priors), sha256 prefixes
RECORDED = {
    "sd15": ("9b1c9459ed8911b8", "26b74b162762b0c0"),
    "sdxl": ("41171f5606facf54", "5c0ec118447de98f"),
}


def digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for array in arrays:
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()[:16]


def stock_digest(pipe: Any) -> str:
    noise = [torch.randn((1, 4, 32, 32), generator=torch.Generator().manual_seed(r.seed)) for r in PAIRS[:2]]
    images = pipe(
        [p for r in PAIRS[:2] for p in (r.prompt_a, r.prompt_b)],
        height=64,
        width=64,
        num_inference_steps=3,
        guidance_scale=7.5,
        latents=torch.cat([n.expand(2, -1, -1, -1) for n in noise]),
        output_type="np",
    ).images
    return digest(uint8(images))


def p2p_digest(pipe: Any, **settings: Any) -> str:
    pairs = generate_pairs(pipe, PAIRS[:2], P2PConfig(**SMALL, **settings))
    return digest(*(array for pair in pairs for array in (pair.a, pair.b, pair.prior)))


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_blend_off_gives_the_pairs_recorded_before_blend_existed(family: str, tiny_models: Any) -> None:
    pipe = tiny_pipeline(tiny_models(family))
    stock, p2p = RECORDED[family]
    if stock_digest(pipe) != stock:
        pytest.skip("this platform's float arithmetic differs from the one the digests were recorded on")
    assert p2p_digest(pipe) == p2p
    assert p2p_digest(pipe, local_blend=False, blend_threshold=0.5) == p2p
