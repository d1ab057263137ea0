"""`generate_pairs` end to end on the tiny SD 1.5 and SDXL pipelines (CPU, 64 px, 3 steps)."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest
import torch

import imgdiff.p2p.pairs as pairs_module
import imgdiff.p2p.processor as processor_module
from imgdiff.p2p import P2PConfig, PairRequest, PromptError, generate_pairs, prompt_tokens
from imgdiff.p2p.alignment import align
from imgdiff.p2p.tokens import tokenize_prompt
from p2p_reference import ReferenceP2PProcessor, one_torch_thread, tiny_pipeline  # noqa: F401

SMALL = {"height": 64, "width": 64, "steps": 3, "self_max_queries": 64}
PAIRS = [
    PairRequest(
        "a photo of a cat on the table", "a photo of a red zebra on the table", 11, "cat", "red zebra"
    ),
    PairRequest("a man sitting on a bench", "a woman sitting on a bench", 12, "man", "woman"),
    PairRequest("a dog next to a car", "a dog next to a bus", 13, "car", "bus"),
]


@pytest.fixture(scope="module", params=["sd15", "sdxl"])
def pipe(request: pytest.FixtureRequest, tiny_models: Any) -> Any:
    return tiny_pipeline(tiny_models(request.param))


def uint8(images: np.ndarray) -> np.ndarray:
    return (np.clip(images, 0, 1) * 255).round().astype(np.uint8)


def diff(x: np.ndarray, y: np.ndarray) -> int:
    return int(np.abs(x.astype(int) - y.astype(int)).max())


def test_editing_off_is_the_stock_pipeline_bit_for_bit(pipe: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    request = PAIRS[0]
    noise = torch.randn((1, 4, 32, 32), generator=torch.Generator().manual_seed(request.seed))
    stock = pipe(
        [request.prompt_a, request.prompt_b],
        height=64,
        width=64,
        num_inference_steps=3,
        guidance_scale=7.5,
        latents=noise.expand(2, -1, -1, -1),
        output_type="np",
    ).images
    installs = []
    monkeypatch.setattr(pipe.unet, "set_attn_processor", lambda *a: installs.append(a))
    (got,) = generate_pairs(pipe, [request], P2PConfig(**SMALL, edit=False))
    assert installs == []  # processors untouched
    assert np.array_equal(got.a, uint8(stock[0])) and np.array_equal(got.b, uint8(stock[1]))
    assert got.prior is None and got.finite and got.a.shape == (64, 64, 3) and got.a.dtype == np.uint8


@pytest.mark.parametrize("guidance", [7.5, 1.0])
def test_identical_prompts_with_full_replacement_give_identical_images(pipe: Any, guidance: float) -> None:
    same = PairRequest("a cat on a red table", "a cat on a red table", 5, "cat", "cat")
    config = P2PConfig(**{**SMALL, "self_max_queries": 10**6}, guidance=guidance, self_replace=1.0)
    (got,) = generate_pairs(pipe, [same], config)
    assert np.array_equal(got.a, got.b)
    assert np.array_equal(got.prior[0], got.prior[1])


def test_editing_changes_only_the_target_image(pipe: Any) -> None:
    plain, edited = (generate_pairs(pipe, PAIRS[:1], P2PConfig(**SMALL, edit=e))[0] for e in (False, True))
    assert np.array_equal(plain.a, edited.a)  # the source is generated as it would be alone
    assert diff(plain.b, edited.b) > 5  # the target follows the source's attention
    assert diff(plain.a, plain.b) > 5


def test_several_pairs_per_call_match_one_pair_per_call(pipe: Any) -> None:
    config = P2PConfig(**SMALL)
    together = generate_pairs(pipe, PAIRS, config)
    for request, joint in zip(PAIRS, together, strict=True):
        (alone,) = generate_pairs(pipe, [request], config)
        assert diff(alone.a, joint.a) <= 2 and diff(alone.b, joint.b) <= 2
        assert np.abs(alone.prior.astype(np.float32) - joint.prior).max() < 1e-2
    assert diff(together[0].a, together[1].a) > 5  # each pair has its own latent


def test_fused_engine_matches_the_explicit_reference_end_to_end(
    pipe: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = P2PConfig(**SMALL, cross_replace=0.6, self_replace=0.4)
    fast = generate_pairs(pipe, PAIRS[:2], config)
    tok = pipe.tokenizer
    alignments = [
        align("original", tok, tokenize_prompt(tok, r.prompt_a), tokenize_prompt(tok, r.prompt_b), 77)
        for r in PAIRS[:2]
    ]
    monkeypatch.setattr(
        processor_module, "P2PAttnProcessor", functools.partial(ReferenceP2PProcessor, alignments=alignments)
    )
    slow = generate_pairs(pipe, PAIRS[:2], config)
    plain = generate_pairs(pipe, PAIRS[:2], P2PConfig(**SMALL, edit=False))
    for f, s, p in zip(fast, slow, plain, strict=True):
        assert diff(f.a, s.a) <= 1 and diff(f.b, s.b) <= 1
        assert diff(f.b, p.b) > 5


@pytest.mark.parametrize(
    ("rule", "steps", "cross_replace", "self_replace", "cross_steps", "self_steps"),
    [
        ("proportional", 5, 0.6, 0.4, 3, 2),  # steps i < fraction * steps: 3.0 and 2.0
        ("proportional", 4, 1.0, 0.4, 4, 2),  # the turbo preset: 1.6 covers steps 0 and 1
        ("proportional", 25, 0.56, 0.28, 14, 7),  # 0.56 * 25 and 0.28 * 25 are a hair above 14 and 7
        ("original", 5, 0.6, 0.4, 3, 2),  # cross int(0.6 * 6) = 3, self int(5 * 0.4) = 2
        ("original", 4, 1.0, 0.4, 4, 1),  # self int(1.6) = 1: step 0 only
        ("original", 2, 0.4, 0.4, 1, 0),  # cross int(0.4 * 3) = 1, self int(0.8) = 0: none
    ],
)
def test_the_unet_call_of_step_i_follows_the_step_rule(
    pipe: Any,
    monkeypatch: pytest.MonkeyPatch,
    rule: str,
    steps: int,
    cross_replace: float,
    self_replace: float,
    cross_steps: int,
    self_steps: int,
) -> None:
    made, build = [], pairs_module.build_controller

    def traced(*args: Any, **kwargs: Any) -> Any:
        made.append(build(*args, **kwargs))
        made[-1].trace = []  # (layer, path) per processor call
        return made[-1]

    monkeypatch.setattr(pairs_module, "build_controller", traced)
    config = P2PConfig(
        **{**SMALL, "steps": steps},
        step_rule=rule,
        cross_replace=cross_replace,
        self_replace=self_replace,
        prior=False,
    )
    generate_pairs(pipe, PAIRS[:1], config)
    layers = len(pipe.unet.attn_processors)
    trace = made[0].trace
    assert len(trace) == steps * layers  # one UNet call per step
    per_step = [{path for _, path in trace[i * layers : (i + 1) * layers]} for i in range(steps)]
    assert [i for i, paths in enumerate(per_step) if "cross" in paths] == list(range(cross_steps))
    assert [i for i, paths in enumerate(per_step) if "self" in paths] == list(range(self_steps))


def test_the_self_attention_limit_follows_the_image_width(pipe: Any) -> None:
    def limit(**config: Any) -> int:
        return pairs_module.build_controller(pipe, PAIRS[:1], P2PConfig(**config)).self_max_queries

    # ceil(width / 32) ** 2, the width only (as the SDXL port); a set limit wins
    assert [limit(height=64, width=w) for w in (64, 256, 200)] == [4, 64, 49]
    assert limit(height=64, width=64, self_max_queries=0) == 0


def test_processors_restored_after_an_exception(pipe: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    before = pipe.unet.attn_processors

    def broken_decode(*args: Any, **kwargs: Any) -> Any:
        assert type(next(iter(pipe.unet.attn_processors.values()))).__name__ == "P2PAttnProcessor"
        raise RuntimeError("decoder exploded")

    monkeypatch.setattr(pipe.vae, "decode", broken_decode)
    with pytest.raises(RuntimeError, match="decoder exploded"):
        generate_pairs(pipe, PAIRS[:2], P2PConfig(**SMALL))
    after = pipe.unet.attn_processors
    assert after.keys() == before.keys() and all(after[k] is before[k] for k in before)


def test_nan_latents_mark_the_pair_not_finite(pipe: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    step = pipe.scheduler.step

    def poisoned(model_output: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        model_output = model_output.clone()
        model_output[2:] = float("nan")  # the second pair only
        return step(model_output, *args, **kwargs)

    monkeypatch.setattr(pipe.scheduler, "step", poisoned)
    first, second = generate_pairs(pipe, PAIRS[:2], P2PConfig(**SMALL))
    assert first.finite and not second.finite


def test_prior_needs_the_words_in_their_prompts(pipe: Any) -> None:
    requests = [
        PairRequest("a cat on the table.", "a dog on the table.", 1, "Cat", "dog"),  # case, full stop
        PairRequest("a cat on the table", "a table", 2, "cat", ""),  # a removal: no target words
        PairRequest("a cat on the table", "a dog on the table", 3, "horse", "dog"),  # not in the prompt
        PairRequest("a cat on the table", "a dog on the table", 4, "cat", "zebra"),
    ]
    found, removal, missing_a, missing_b = generate_pairs(pipe, requests, P2PConfig(**SMALL))
    assert found.prior.shape == (2, 8, 8) and found.prior.dtype == np.float16
    assert found.prior.reshape(2, -1).max(axis=1).tolist() == [1.0, 1.0] and found.prior.min() >= 0
    assert removal.prior[0].max() == 1.0 and removal.prior[1].max() == 0.0
    assert missing_a.prior is None and missing_b.prior is None
    (off,) = generate_pairs(pipe, requests[:1], P2PConfig(**SMALL, prior=False))
    assert off.prior is None


def test_prompt_errors_name_the_reason_and_the_request(pipe: Any) -> None:
    long = " ".join(["a"] * 76)
    assert prompt_tokens(pipe, long) == 76 and prompt_tokens(pipe, "a photo of a cat") > 4
    with pytest.raises(PromptError, match=r"^prompt_too_long: prompt_b has 76 tokens") as error:
        generate_pairs(pipe, [PAIRS[0], PairRequest("a cat", long, 1)], P2PConfig(**SMALL))
    assert error.value.index == 1
    with pytest.raises(PromptError, match=r"^empty_prompt: prompt_a") as error:
        generate_pairs(pipe, [PairRequest("  ", "a dog", 1)], P2PConfig(**SMALL))
    assert error.value.index == 0
    assert generate_pairs(pipe, [], P2PConfig(**SMALL)) == []
