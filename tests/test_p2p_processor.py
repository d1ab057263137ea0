"""The fused Prompt-to-Prompt processors against the explicit-probabilities reference, layer by layer.

Each attention layer of the tiny SD 1.5 and SDXL UNets gets the inputs it sees in a real forward pass
(two pairs, guidance on: batch 8); the engine's processor and `p2p_reference.ReferenceP2PProcessor`
must agree within 1e-5 for refine and self-attention replacement, and the prior's sums must match the
reference's explicit word columns.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F

from clip_bpe import span
from imgdiff.p2p import P2PConfig, PairRequest
from imgdiff.p2p.alignment import align
from imgdiff.p2p.blend import LocalBlend
from imgdiff.p2p.pairs import build_controller
from imgdiff.p2p.processor import P2PAttnProcessor
from imgdiff.p2p.tokens import tokenize_prompt
from p2p_reference import ReferenceP2PProcessor, one_torch_thread, tiny_pipeline  # noqa: F401

REQUESTS = [
    PairRequest(
        "a photo of a cat on the table", "a photo of a red zebra on the table", 0, "cat", "red zebra"
    ),
    PairRequest("a man sitting on a bench.", "a woman standing on a bench.", 1, "man", "woman"),
]


@pytest.fixture(scope="module", params=["sd15", "sdxl"])
def pipe(request: pytest.FixtureRequest, tiny_models: Any) -> Any:
    return tiny_pipeline(tiny_models(request.param))


def layer_inputs(pipe: Any, batch: int) -> dict[str, tuple[Any, torch.Tensor, torch.Tensor | None]]:
    """name -> (attention module, hidden states, encoder hidden states) from one UNet forward."""
    unet = pipe.unet
    seen: dict[str, tuple[Any, torch.Tensor, torch.Tensor | None]] = {}
    stock = unet.attn_processors

    class Record:
        def __init__(self, name: str, original: Any) -> None:
            self.name, self.original = name, original

        def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None):
            seen[self.name] = (attn, hidden_states, encoder_hidden_states)
            return self.original(attn, hidden_states, encoder_hidden_states=encoder_hidden_states)

    g = torch.Generator().manual_seed(0)
    extra = {}
    if unet.config.addition_embed_type == "text_time":
        extra = {
            "added_cond_kwargs": {
                "text_embeds": torch.randn(batch, pipe.text_encoder_2.config.projection_dim, generator=g),
                "time_ids": torch.tensor([[64.0, 64, 0, 0, 64, 64]]).repeat(batch, 1),
            }
        }
    unet.set_attn_processor({name: Record(name, proc) for name, proc in stock.items()})
    try:
        with torch.no_grad():
            unet(
                torch.randn(batch, 4, 32, 32, generator=g),
                500,
                encoder_hidden_states=torch.randn(batch, 77, unet.config.cross_attention_dim, generator=g),
                **extra,
            )
    finally:
        unet.set_attn_processor(stock)
    return seen


def reference_alignments(
    pipe: Any, requests: list[PairRequest] = REQUESTS, method: str = "original"
) -> list[tuple[list[int], list[float]]]:
    tok = pipe.tokenizer
    return [
        align(method, tok, tokenize_prompt(tok, r.prompt_a), tokenize_prompt(tok, r.prompt_b), 77)
        for r in requests
    ]


# guidance on: rows [uncond a0, b0, a1, b1, cond a0, b0, a1, b1], the conditional targets are edited;
# off: [a0, b0, a1, b1], every target is
@pytest.mark.parametrize(("guidance", "edited"), [(7.5, [5, 7]), (1.0, [1, 3])])
@pytest.mark.parametrize("alignment", ["original", "whole-word"])
def test_fused_form_equals_explicit_probabilities(
    pipe: Any, guidance: float, edited: list[int], alignment: str
) -> None:
    config = P2PConfig(
        height=64,
        width=64,
        steps=10,
        self_max_queries=10**6,
        prior=False,
        guidance=guidance,
        alignment=alignment,
    )
    controller = build_controller(pipe, REQUESTS, config)
    stock = pipe.unet.attn_processors
    inputs = layer_inputs(pipe, controller.batch)
    assert len(inputs) == len(stock) and controller.batch == (8 if guidance > 1 else 4)
    untouched = [row for row in range(controller.batch) if row not in edited]
    paths = []
    controller.trace = paths
    alignments = reference_alignments(pipe, method=alignment)
    with torch.no_grad():
        for name, (attn, hidden, context) in inputs.items():
            fast = P2PAttnProcessor(controller, stock[name], name)
            ref = ReferenceP2PProcessor(controller, stock[name], name, alignments=alignments)
            plain = stock[name](attn, hidden, encoder_hidden_states=context)
            got, want = fast(attn, hidden, context), ref(attn, hidden, context)
            assert (got - want).abs().max() < 1e-5, name
            # the source rows and the unconditional half are untouched, the targets are edited
            assert (got[untouched] - plain[untouched]).abs().max() < 1e-5, name
            assert (got[edited] - plain[edited]).abs().max() > 1e-3, name
    assert {path for _, path in paths} == {"self", "cross"}


def test_per_word_windows_in_fused_form_equal_explicit_probabilities(pipe: Any) -> None:
    # 10 steps, the original rule: "table" (pair 0's target, aligned) is refined at steps
    # [0, int(0.5 * 11)) = 0-4, "bench." (pair 1's, written with its full stop) at
    # [int(0.2 * 11), 10) = 2-9, the other tokens at every step; "dog" is in no target
    words = (("table", 0.5), ("bench.", (0.2, 1.0)), ("dog", 0.3))
    config = P2PConfig(
        height=64, width=64, steps=10, self_max_queries=0, prior=False, cross_replace_words=words
    )
    controller = build_controller(pipe, REQUESTS, config)
    assert len(controller.phases) == 3  # steps 0-1, 2-4, 5-9
    stock = pipe.unet.attn_processors
    inputs = {n: v for n, v in layer_inputs(pipe, controller.batch).items() if v[2] is not None}
    alignments = reference_alignments(pipe)
    outputs = {}
    with torch.no_grad():
        for step in (0, 3, 7):
            controller.step = step
            for name, (attn, hidden, context) in inputs.items():
                got = P2PAttnProcessor(controller, stock[name], name)(attn, hidden, context)
                want = ReferenceP2PProcessor(controller, stock[name], name, alignments=alignments)(
                    attn, hidden, context
                )
                assert (got - want).abs().max() < 1e-5, (step, name)
                outputs[step, name] = got
    for name in inputs:  # the windows change the targets' outputs between the phases
        assert (outputs[0, name][5] - outputs[7, name][5]).abs().max() > 1e-4
        assert (outputs[0, name][7] - outputs[3, name][7]).abs().max() > 1e-4


def test_unscheduled_steps_are_stock_bit_for_bit(pipe: Any) -> None:
    config = P2PConfig(height=64, width=64, steps=10, cross_replace=0.5, self_replace=0.3, prior=False)
    controller = build_controller(pipe, REQUESTS, config)
    stock = pipe.unet.attn_processors
    inputs = layer_inputs(pipe, controller.batch)
    controller.step = 5  # past both fractions
    controller.trace = []
    with torch.no_grad():
        for name, (attn, hidden, context) in inputs.items():
            got = P2PAttnProcessor(controller, stock[name], name)(attn, hidden, context)
            assert torch.equal(got, stock[name](attn, hidden, encoder_hidden_states=context))
    assert {path for _, path in controller.trace} == {"stock"}
    # cross-attention refine still on (5 of 10 steps), self-attention replacement over (3 of 10)
    controller.step = 3
    controller.trace = []
    with torch.no_grad():
        for name, (attn, hidden, context) in inputs.items():
            P2PAttnProcessor(controller, stock[name], name)(attn, hidden, context)
    assert [path for _, path in controller.trace] == [
        "cross" if name.endswith("attn2.processor") else "stock" for name, _ in controller.trace
    ]


def test_self_replacement_only_up_to_the_query_limit(pipe: Any) -> None:
    controller = build_controller(
        pipe, REQUESTS, P2PConfig(height=64, width=64, self_max_queries=64, prior=False)
    )
    stock = pipe.unet.attn_processors
    inputs = layer_inputs(pipe, controller.batch)
    controller.trace = []
    with torch.no_grad():
        for name, (attn, hidden, context) in inputs.items():
            if context is None:
                P2PAttnProcessor(controller, stock[name], name)(attn, hidden, context)
    edited = {name for name, path in controller.trace if path == "self"}
    small = {
        name for name, (_, hidden, context) in inputs.items() if context is None and hidden.shape[1] <= 64
    }
    assert edited == small and 0 < len(small) < len(controller.trace)  # 8x8 layers only, not 16x16


def test_prior_sums_equal_the_explicit_word_columns(pipe: Any) -> None:
    # "table" (in the third pair's target) has its own window: refined at steps 0-2 only
    config = P2PConfig(
        height=64,
        width=64,
        steps=10,
        cross_replace=0.5,
        cross_replace_words=(("table", 0.3),),
        self_max_queries=10**6,
        prior=True,
    )
    # the third pair's target phrase holds an aligned word ("table"), whose map is the source's on
    # refined steps: the prior must follow the refine map, not just the target's own columns
    requests = [
        *REQUESTS,
        PairRequest("a cat on the table", "a cat on the big table", 2, "table", "big table"),
    ]
    controller = build_controller(pipe, requests, config)
    prior = controller.prior
    assert prior is not None and prior.grid == (8, 8)  # 64 px / 32 has no layer: nearest grid
    stock = pipe.unet.attn_processors
    inputs = layer_inputs(pipe, controller.batch)
    tok = pipe.tokenizer

    # positions written out from the tokeniser: "cat" after "a photo of a", "red zebra" likewise, etc.
    words = [
        (span(tok, "a photo of a", "cat"), span(tok, "a photo of a", "red zebra")),
        (span(tok, "a", "man"), span(tok, "a", "woman")),
        (span(tok, "a cat on the", "table"), span(tok, "a cat on the", "big table")),
    ]
    store = {"a": torch.zeros(3, 64), "b": torch.zeros(3, 64)}
    alignments = reference_alignments(pipe, requests)
    with torch.no_grad():
        # refine on (all aligned tokens), on but for "table", off: [0, int(0.3 * 11)), [.., int(0.5 * 11))
        for edited_step in (0, 4, 9):
            controller.step = edited_step
            for name, (attn, hidden, context) in inputs.items():
                if context is None:
                    continue
                P2PAttnProcessor(controller, stock[name], name)(attn, hidden, context)
                ReferenceP2PProcessor(
                    controller, stock[name], alignments=alignments, words=words, store=store, prior_queries=64
                )(attn, hidden, context)
    maps = prior.maps()
    for i in range(3):
        for channel, key in enumerate("ab"):
            want = store[key][i] / store[key][i].max()
            got = torch.from_numpy(maps[i][channel].astype("float32")).flatten()
            assert (got - want).abs().max() < 2e-3
        assert maps[i].dtype.name == "float16" and maps[i].shape == (2, 8, 8)


def test_blend_maps_equal_the_explicit_probabilities(pipe: Any) -> None:
    """Prompt-to-Prompt's LocalBlend maps from explicit probabilities: per pair, the source row's
    old-word columns and the target row's new-word columns as the layer used them (refined), summed
    over the words' tokens, averaged over every head of every layer at the blend's resolution and
    summed over steps; max-pooled 3x3, upsampled to the latent (nearest), scaled by their maximum."""
    config = P2PConfig(height=64, width=64, steps=10, cross_replace=0.5, self_max_queries=10**6)
    config = P2PConfig(**{**config.__dict__, "prior": False, "local_blend": True})  # blend alone
    # a removal (no target words), and a target phrase with an aligned word, whose map is the source's
    # on refined steps
    requests = [
        *REQUESTS,
        PairRequest("a cat on the table", "a cat on the table", 2, "cat", ""),
        PairRequest("a cat on the table", "a cat on the big table", 3, "table", "big table"),
    ]
    controller = build_controller(pipe, requests, config)
    blend = LocalBlend(controller.prior, (32, 32), threshold=0.3, start=0.0)
    stock = pipe.unet.attn_processors
    inputs = layer_inputs(pipe, controller.batch)
    tok = pipe.tokenizer
    words = [
        (span(tok, "a photo of a", "cat"), span(tok, "a photo of a", "red zebra")),
        (span(tok, "a", "man"), span(tok, "a", "woman")),
        (span(tok, "a", "cat"), []),
        (span(tok, "a cat on the", "table"), span(tok, "a cat on the", "big table")),
    ]
    alignments = reference_alignments(pipe, requests)
    explicit: list[torch.Tensor] = []
    with torch.no_grad():
        for edited_step in (0, 7):  # refined, then not (cross_replace 0.5 of 10 steps: int(5.5) = 5)
            controller.step = edited_step
            for name, (attn, hidden, context) in inputs.items():
                if context is None:
                    continue
                P2PAttnProcessor(controller, stock[name], name)(attn, hidden, context)
                ReferenceP2PProcessor(
                    controller, stock[name], alignments=alignments, prior_queries=64, cross_probs=explicit
                )(attn, hidden, context)
    assert len(explicit) > 2  # several layers at 8x8, twice
    cond = torch.stack(
        [probs[controller.cond_start :] for probs in explicit]
    )  # (calls, rows, heads, n, keys)
    want = torch.zeros(len(requests), 2, 8, 8)
    for i, (pos_a, pos_b) in enumerate(words):
        for channel, (row, positions) in enumerate(((2 * i, pos_a), (2 * i + 1, pos_b))):
            per_layer = cond[:, row][..., positions].sum(-1)  # (calls, heads, n)
            want[i, channel] = per_layer.mean(1).sum(0).view(8, 8)  # layers share their head count
    pooled = F.interpolate(F.max_pool2d(want, 3, stride=1, padding=1), size=(32, 32), mode="nearest")
    peak = pooled.amax(dim=(2, 3), keepdim=True)
    want = pooled / torch.where(peak > 0, peak, 1.0)
    got = blend.maps()
    assert got.shape == (4, 2, 32, 32)
    assert (got - want).abs().max() < 1e-5
    assert want[2, 1].abs().max() == 0 and want[:, 0].amin() < 0.9  # a removal's target; not flat
