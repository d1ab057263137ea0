"""`generate_pairs`: several Prompt-to-Prompt pairs in one call of a stock SD / SDXL pipeline.

The call, as a recipe:
1. check every prompt (empty, over the text window) before any work, so a caller can drop the one
   that fails (`PromptError.index`) and retry the rest;
2. lay the prompts out as [a0, b0, a1, b1, ...] and draw each pair's initial latent on the CPU from
   its seed alone, the same latent for a and b;
3. build the controller once: refine alignments (`config.alignment`), the edit schedule (step rule,
   windows, per-word windows, the self-attention layer limit), index tensors, value mixes, prior
   weights;
4. install the processors, run the pipeline with `latents=` and a step callback (which watches for
   NaN/inf, applies the local blend when it is on and advances the edit schedule), restore the
   processors in `finally`;
5. turn the images to uint8 and the prior sums to per-pair maps; note the pairs whose image the
   pipeline's safety checker blanked (SD 1.x checkpoints that ship one).
With `edit=False` step 3 and the processors are skipped: plain two-image generation from the same
latents, the baseline Prompt-to-Prompt is measured against. Local blend reads the prior's sums, so
they are collected when it is on even with the prior off (which then only leaves them out).
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import numpy as np
import torch

from imgdiff.p2p.alignment import align
from imgdiff.p2p.blend import LocalBlend
from imgdiff.p2p.prior import PriorCollector, layer_grids, prior_grid
from imgdiff.p2p.processor import P2PController, installed
from imgdiff.p2p.requests import P2PConfig, PairImages, PairRequest
from imgdiff.p2p.schedule import Window, as_window, self_max_queries_from_size
from imgdiff.p2p.tokens import (
    PromptError,
    PromptTokens,
    phrase_positions,
    text_token_ids,
    tokenize_prompt,
    window,
    word_positions,
)


def generate_pairs(model_or_pipe: Any, requests: list[PairRequest], config: P2PConfig) -> list[PairImages]:
    pipe = getattr(model_or_pipe, "pipe", model_or_pipe)
    if not requests:
        return []
    _check_blend(config)
    tokenizer = _tokenizer(pipe)
    prompts = [_checked_prompts(tokenizer, request, i) for i, request in enumerate(requests)]
    unet = pipe.unet
    device, dtype = unet.device, unet.dtype
    latent_hw = (config.height // pipe.vae_scale_factor, config.width // pipe.vae_scale_factor)

    controller = blend = None
    if config.edit:
        controller = build_controller(pipe, requests, config, prompts)
        if config.local_blend and controller.prior is not None:
            blend = LocalBlend(controller.prior, latent_hw, config.blend_threshold, config.blend_start)
    watch = _StepWatch(len(requests), controller, blend)
    with installed(unet, controller) if controller is not None else nullcontext():
        output = pipe(
            prompt=[p for request in requests for p in (request.prompt_a, request.prompt_b)],
            height=config.height,
            width=config.width,
            num_inference_steps=config.steps,
            guidance_scale=config.guidance,
            latents=_initial_latents(requests, unet.config.in_channels, latent_hw).to(device, dtype),
            # per-row generators: stochastic schedulers (SDXL-Turbo's ancestral Euler) then give a and b
            # the same noise, drawn from the pair's seed whatever else is in the call
            generator=[_generator(r.seed + 1) for r in requests for _ in "ab"],
            output_type="np",
            callback_on_step_end=watch,
            callback_on_step_end_tensor_inputs=["latents"],
        )
    images = output.images
    # SD 1.x pipelines with a safety checker return a flagged image as black, still finite
    flagged = np.asarray(getattr(output, "nsfw_content_detected", None) or [False] * len(images))
    blanked = flagged.reshape(len(requests), 2).any(axis=1)

    finite = np.isfinite(images).reshape(len(requests), -1).all(axis=1)
    if watch.finite is not None:
        finite &= watch.finite.cpu().numpy()
    pixels = (np.clip(np.nan_to_num(images, nan=0.0), 0.0, 1.0) * 255).round().astype(np.uint8)
    priors: list[np.ndarray | None] = [None] * len(requests)
    if config.prior and controller is not None and controller.prior is not None:
        priors = controller.prior.maps()
    masks = _blend_masks(blend, len(requests))
    return [
        PairImages(
            a=pixels[2 * i],
            b=pixels[2 * i + 1],
            prior=priors[i],
            finite=bool(finite[i]),
            blanked=bool(blanked[i]),
            blend_mask=masks[i],
        )
        for i in range(len(requests))
    ]


def _check_blend(config: P2PConfig) -> None:
    if not config.local_blend:
        return
    if not config.edit:
        raise ValueError("local blend needs Prompt-to-Prompt editing (edit=True)")
    if not 0 <= config.blend_threshold < 1:
        raise ValueError(f"blend_threshold is in [0, 1), got {config.blend_threshold}")
    if not 0 <= config.blend_start <= 1:
        raise ValueError(f"blend_start is a fraction of the steps in [0, 1], got {config.blend_start}")


def _blend_masks(blend: LocalBlend | None, pairs: int) -> list[np.ndarray | None]:
    """Per pair, the last step's blend mask at the latent's size; None where there was none."""
    if blend is None or blend.mask is None:
        return [None] * pairs
    masks = blend.mask[:, 0].cpu().numpy()
    return [masks[i] if wanted else None for i, wanted in enumerate(blend.collector.wanted)]


def prompt_tokens(model_or_pipe: Any, text: str) -> int:
    pipe = getattr(model_or_pipe, "pipe", model_or_pipe)
    return len(text_token_ids(_tokenizer(pipe), [text])[0])


def _tokenizer(pipe: Any) -> Any:
    tokenizer = getattr(pipe, "tokenizer", None) or getattr(pipe, "tokenizer_2", None)
    if tokenizer is None:
        raise ValueError(f"{type(pipe).__name__} has no CLIP tokenizer; Prompt-to-Prompt needs SD or SDXL")
    return tokenizer


def _checked_prompts(tokenizer: Any, request: PairRequest, index: int) -> tuple[PromptTokens, PromptTokens]:
    out = []
    for side, text in (("prompt_a", request.prompt_a), ("prompt_b", request.prompt_b)):
        if not text.strip():
            raise PromptError(f"empty_prompt: {side} is empty", index)
        try:
            tokens = tokenize_prompt(tokenizer, text)
        except PromptError as error:
            raise PromptError(str(error), index) from None
        if len(tokens.ids) > window(tokenizer):
            limit = window(tokenizer)
            reason = f"prompt_too_long: {side} has {len(tokens.ids)} tokens, over the {limit}-token window"
            raise PromptError(reason, index)
        out.append(tokens)
    return out[0], out[1]


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed % 2**64)


def _initial_latents(requests: list[PairRequest], channels: int, latent_hw: tuple[int, int]) -> torch.Tensor:
    """(2 * pairs, channels, h, w) float32 on the CPU: each pair's noise from its seed, twice."""
    noise = [torch.randn((1, channels, *latent_hw), generator=_generator(r.seed)) for r in requests]
    return torch.cat([n.expand(2, -1, -1, -1) for n in noise])


def build_controller(
    pipe: Any,
    requests: list[PairRequest],
    config: P2PConfig,
    prompts: list[tuple[PromptTokens, PromptTokens]] | None = None,
) -> P2PController:
    """The per-call controller for `requests` on `pipe` (anything with `tokenizer`, `unet` and
    `vae_scale_factor`): alignments, index tensors and prior weights, on the UNet's device."""
    if prompts is None:
        prompts = [_checked_prompts(_tokenizer(pipe), request, i) for i, request in enumerate(requests)]
    guidance = config.guidance > 1 and pipe.unet.config.time_cond_proj_dim is None  # as the pipelines decide
    latent_hw = (config.height // pipe.vae_scale_factor, config.width // pipe.vae_scale_factor)
    tokenizer = _tokenizer(pipe)
    tokens = int(tokenizer.model_max_length)
    alignments = [align(config.alignment, tokenizer, a, b, tokens) for a, b in prompts]
    word_windows = [_word_windows(config, b) for _, b in prompts]
    controller = P2PController(
        [mapper for mapper, _ in alignments],
        [alpha for _, alpha in alignments],
        guidance=guidance,
        steps=config.steps,
        step_rule=config.step_rule,
        cross_replace=as_window(config.cross_replace),
        word_windows=word_windows,
        self_replace=as_window(config.self_replace),
        self_max_queries=self_max_queries(config),
        device=pipe.unet.device,
        dtype=pipe.unet.dtype,
    )
    if config.prior or config.local_blend:  # local blend reads the prior's sums
        words = [_word_weights(r, a, b, tokens) for r, (a, b) in zip(requests, prompts, strict=True)]
        if any(w is not None for w in words):
            controller.prior = _prior_collector(pipe.unet, controller, words, config, latent_hw)
    return controller


def self_max_queries(config: P2PConfig) -> int:
    """The self-attention layer limit: the configured one, or the SDXL port's from the image width."""
    if config.self_max_queries is None:
        return self_max_queries_from_size(config.width)
    return config.self_max_queries


def _word_windows(config: P2PConfig, target: PromptTokens) -> list[tuple[list[int], Window]]:
    """The per-word cross windows that apply to the target prompt: (its positions, window)."""
    out = []
    for word, window_value in config.cross_replace_words:
        positions = word_positions(target, word)
        if positions:
            out.append((positions, as_window(window_value)))
    return out


def _prior_collector(
    unet: Any,
    controller: P2PController,
    words: list[tuple[torch.Tensor, torch.Tensor] | None],
    config: P2PConfig,
    latent_hw: tuple[int, int],
) -> PriorCollector:
    zeros = torch.zeros(controller.tokens)
    grids = layer_grids(unet, latent_hw)
    grid = prior_grid(grids, config.height, config.width, config.prior_res_div)
    # the head counts of the cross-attention layers at that grid size the prior's sums
    heads = set()
    for name, layer_grid in grids.items():
        layer = unet.get_submodule(name.removesuffix(".processor"))
        if layer_grid == grid and layer.is_cross_attention:
            heads.add(layer.heads)
    if not heads:
        raise ValueError(f"attention prior: no cross-attention layer at {grid[0]}x{grid[1]}")
    wanted = [w is not None for w in words]
    word_weights = [w if w is not None else (zeros, zeros) for w in words]
    collector = PriorCollector(grid, controller.cond_start, word_weights, wanted, heads, unet.device)
    for phase in [None, *controller.phases]:  # the weights of every kind of step, before the call
        collector.prepare(phase)
    return collector


def _word_weights(
    request: PairRequest, a: PromptTokens, b: PromptTokens, tokens: int
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """1/count on the changed words' token positions of each prompt; None when the source words (or
    given target words) are not in their prompt. Empty target words (a removal) give a zero column."""
    found_a = phrase_positions(a, request.words_a)
    found_b = phrase_positions(b, request.words_b) if request.words_b.strip() else []
    if not found_a or found_b is None:
        return None
    weights = []
    for positions in (found_a, found_b):
        w = torch.zeros(tokens)
        if positions:
            w[positions] = 1.0 / len(positions)
        weights.append(w)
    return weights[0], weights[1]


class _StepWatch:
    """The pipeline's step-end callback: records, per pair, whether the step's latents stayed finite
    (on the device: no synchronisation per step), blends them when local blend is on (the pipeline
    goes on with the latents returned here) and advances the edit schedule."""

    def __init__(self, pairs: int, controller: P2PController | None, blend: LocalBlend | None = None) -> None:
        self.pairs = pairs
        self.controller = controller
        self.blend = blend
        self.finite: torch.Tensor | None = None

    def __call__(self, pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        ok = torch.isfinite(tensors["latents"]).reshape(self.pairs, -1).all(dim=1)
        self.finite = ok if self.finite is None else self.finite & ok
        if self.blend is not None:
            tensors["latents"] = self.blend(tensors["latents"], step, pipe.num_timesteps)
        if self.controller is not None:
            self.controller.on_step_end(step, pipe.num_timesteps)
        return tensors
