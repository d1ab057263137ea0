"""Local blend end to end on the tiny SDXL and SD 1.5 pipelines (CPU, 64 px, 3 steps, three pairs in
one call): after every step image b's latent equals image a's outside the pair's mask, bit for bit,
as the pipeline goes on with it (the next UNet input, the latents decoded). Blend maps against
explicit probabilities: test_p2p_processor.py; blend off against the engine before blend:
test_p2p_blend_off.py.

The tiny random UNets attend almost evenly, so at the default threshold 0.3 every latent position
is inside the mask; these tests use 0.8, where the masks cover part of the latent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

import imgdiff.p2p.blend as blend_module
from imgdiff.p2p import P2PConfig, PairRequest, generate_pairs
from imgdiff.p2p.schedule import blend_start_step
from p2p_reference import one_torch_thread, tiny_pipeline  # noqa: F401
from test_p2p_pairs import PAIRS, SMALL, diff

BLEND = P2PConfig(**SMALL, local_blend=True, blend_threshold=0.8)


@pytest.fixture(scope="module", params=["sdxl", "sd15"])
def pipe(request: pytest.FixtureRequest, tiny_models: Any) -> Any:
    return tiny_pipeline(tiny_models(request.param))


class Latents:
    """The latents the pipeline goes on with after each step: each UNet call's input after the first
    (its conditional copy; the scheduler's input scaling is one factor for every row, so it keeps
    equal values equal) and the latents handed to the VAE after the last step; and each blend's mask."""

    def __init__(self, pipe: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.unet_inputs: list[torch.Tensor] = []
        self.decoded: list[torch.Tensor] = []
        self.masks: list[torch.Tensor] = []
        self.hook = pipe.unet.register_forward_pre_hook(
            lambda _, args: self.unet_inputs.append(args[0].clone())
        )
        decode = pipe.vae.decode
        monkeypatch.setattr(
            pipe.vae, "decode", lambda z, *a, **k: (self.decoded.append(z.clone()), decode(z, *a, **k))[1]
        )
        call = blend_module.LocalBlend.__call__

        def spied(blend: Any, *args: Any) -> torch.Tensor:
            out = call(blend, *args)
            _, step, steps = args
            if step >= blend_start_step(blend.start, steps):
                self.masks.append(blend.mask.clone())
            return out

        monkeypatch.setattr(blend_module.LocalBlend, "__call__", spied)

    def after_steps(self, pairs: int) -> list[torch.Tensor]:
        """Per step, (pairs, 2, channels, h, w)."""
        self.hook.remove()
        rows = [x[-2 * pairs :] for x in self.unet_inputs[1:]] + self.decoded  # guidance: [uncond, cond]
        return [x.unflatten(0, (pairs, 2)) for x in rows]


@pytest.fixture
def spy(pipe: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Latents]:
    latents = Latents(pipe, monkeypatch)
    yield latents
    latents.hook.remove()


@pytest.mark.parametrize("guidance", [7.5, 1.0])  # guidance off: every row is conditional (Turbo)
def test_outside_the_mask_b_latent_is_a_latent_bit_for_bit_after_every_step(
    pipe: Any, spy: Latents, guidance: float
) -> None:
    pairs = generate_pairs(pipe, PAIRS, P2PConfig(**{**BLEND.__dict__, "guidance": guidance}))
    steps = spy.after_steps(len(PAIRS))
    assert len(steps) == len(spy.masks) == SMALL["steps"]
    for latents, mask in zip(steps, spy.masks, strict=True):
        a, b = latents[:, 0], latents[:, 1]
        outside = ~mask.expand_as(a)
        assert torch.equal(a[outside], b[outside])
        assert 0 < outside.sum() < outside.numel()
        for i in range(len(PAIRS)):  # inside, b is its own
            assert not torch.equal(a[i][~outside[i]], b[i][~outside[i]])
    for i, pair in enumerate(pairs):  # the record's mask is the last step's
        assert pair.blend_mask.dtype == np.bool_ and np.array_equal(
            pair.blend_mask, spy.masks[-1][i, 0].numpy()
        )
        assert pair.prior is not None and diff(pair.a, pair.b) > 0  # b keeps its own inside


def test_without_blend_the_same_positions_differ(pipe: Any, spy: Latents) -> None:
    masks = [pair.blend_mask for pair in generate_pairs(pipe, PAIRS, BLEND)]
    spy.unet_inputs.clear(), spy.decoded.clear()
    plain = generate_pairs(pipe, PAIRS, P2PConfig(**SMALL))
    final = spy.after_steps(len(PAIRS))[-1]
    for i, mask in enumerate(masks):
        outside = ~torch.from_numpy(mask).expand_as(final[i, 0])
        assert not torch.equal(final[i, 0][outside], final[i, 1][outside])
        assert plain[i].blend_mask is None


def test_blending_starts_at_its_start_step(pipe: Any, spy: Latents) -> None:
    # as the original's start_blend: steps i >= int(0.5 * 3) = 1
    generate_pairs(pipe, PAIRS[:1], P2PConfig(**{**BLEND.__dict__, "blend_start": 0.5}))
    first, *later = spy.after_steps(1)
    assert (
        not torch.equal(first[0, 0], first[0, 1])
        and torch.isin(first[0, 0], first[0, 1]).float().mean() < 0.5
    )
    assert len(spy.masks) == len(later) == 2
    for latents, mask in zip(later, spy.masks, strict=True):
        outside = ~mask[0].expand_as(latents[0, 0])
        assert torch.equal(latents[0, 0][outside], latents[0, 1][outside])


def test_a_pair_without_its_words_is_not_blended_and_the_others_are(pipe: Any, spy: Latents) -> None:
    missing = PairRequest("a dog next to a car", "a dog next to a bus", 13, "zebra", "bus")
    removal = PairRequest("a man sitting on a bench", "a sitting on a bench", 12, "man", "")
    pairs = generate_pairs(pipe, [missing, removal], BLEND)
    assert pairs[0].blend_mask is None and pairs[0].prior is None
    assert pairs[1].blend_mask is not None and 0 < pairs[1].blend_mask.mean() < 1
    final = spy.after_steps(2)[-1]
    assert torch.isin(final[0, 1], final[0, 0]).float().mean() < 0.5  # b of the first pair: its own
    outside = ~torch.from_numpy(pairs[1].blend_mask).expand_as(final[1, 0])
    assert torch.equal(final[1, 0][outside], final[1, 1][outside])


def test_blend_with_the_prior_off_gives_the_same_pairs_without_the_prior(pipe: Any) -> None:
    with_prior = generate_pairs(pipe, PAIRS[:2], BLEND)
    without = generate_pairs(pipe, PAIRS[:2], P2PConfig(**{**BLEND.__dict__, "prior": False}))
    for x, y in zip(with_prior, without, strict=True):
        assert y.prior is None and x.prior is not None
        assert np.array_equal(x.a, y.a) and np.array_equal(x.b, y.b)
        assert np.array_equal(x.blend_mask, y.blend_mask)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"edit": False}, "needs Prompt-to-Prompt editing"),
        ({"blend_threshold": 1.0}, "blend_threshold is in"),
        ({"blend_start": 1.5}, "blend_start is a fraction"),
    ],
)
def test_bad_blend_settings_raise(pipe: Any, settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_pairs(pipe, PAIRS[:1], P2PConfig(**{**BLEND.__dict__, **settings}))
