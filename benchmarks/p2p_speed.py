"""Prompt-to-Prompt pairs against plain two-image generation, on SDXL-base's full architecture.

    python benchmarks/p2p_speed.py            # CUDA: SDXL-base, random fp16 weights, 1024 px, 50 steps
    python benchmarks/p2p_speed.py --tiny     # CPU: the same measurement on the tiny SDXL pipeline

Full mode builds SDXL-base's UNet (2.57 B parameters), both text encoders (CLIP ViT-L and OpenCLIP
bigG text towers) and VAE from configs written here, with random weights directly on the GPU in fp16
(nothing is downloaded; the tokenizers are the tiny CLIP BPE, which has CLIP's 77-token window). FLOPs
and memory traffic are the real model's, so the times are.

Both modes go through `imgdiff.p2p.generate_pairs` on the same pipeline with the same prompts, seeds
and latents, in eager mode: "stock" is `edit=False` (processors untouched: plain diffusers generation
of the two images of each pair), "p2p" is the paper's settings (Prompt-to-Prompt's own alignment and
step rules: refine at every step, self-attention replacement for steps [0, int(0.4 * steps)) in layers
of at most 32x32 queries) with the prior on. Each mode gets
a warm-up call first (untimed, fewer steps, same shapes); then every repeat runs all modes in turn
(stock 1, p2p 1, stock 4, p2p 4 pairs per call), each timed between CUDA synchronisations with the
peak memory counter reset before it. Prints one JSON object: seconds per pair (median, min, max) and
peak GiB per mode, and `p2p_over_stock_1` / `p2p_over_stock_4` (ratios of the medians).
Goals (reported, not enforced): p2p_over_stock_4 <= 1.05, p2p_over_stock_1 <= 1.15, peak within 10%.

Measured on one H100 80GB (torch 2.11, diffusers 0.42.1, eager, 3 repeats; `gpu_check.sh` took 2.7
minutes in all): stock 4.50 / 4.06 s per pair at 1 / 4 pairs per call, Prompt-to-Prompt with the prior
4.71 / 4.24 s: p2p_over_stock_1 1.046, p2p_over_stock_4 1.045; peak 14.78 -> 14.97 GiB and
38.80 -> 39.58 GiB (1.013x, 1.020x: the cached text keys/values and refine terms).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from imgdiff.p2p import P2PConfig, PairRequest, generate_pairs
from imgdiff.tiny.diffusion import SDXL_BASE_TEXT, SDXL_BASE_TEXT_2, SDXL_BASE_UNET, sdxl_scheduler

GOALS = {"p2p_over_stock_4": 1.05, "p2p_over_stock_1": 1.15, "peak_ratio": 1.10}
PAIRS = [
    PairRequest(
        "a red fire hydrant on a street corner",
        "a blue mailbox on a street corner",
        1,
        "red fire hydrant",
        "blue mailbox",
    ),
    PairRequest("a cat sitting on a wooden table", "a dog sitting on a wooden table", 2, "cat", "dog"),
    PairRequest(
        "a man riding a bicycle down a street", "a woman riding a bicycle down a street", 3, "man", "woman"
    ),
    PairRequest(
        "a plate with an apple next to a cup", "a plate with a banana next to a cup", 4, "apple", "banana"
    ),
]
SDXL_VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "block_out_channels": (128, 256, 512, 512),
    "layers_per_block": 2,
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 1024,
    "scaling_factor": 0.13025,
    "force_upcast": True,
}


def full_size_sdxl(device: str, work: Path) -> Any:
    """SDXL-base with random weights, made on `device` and cast to fp16 there."""
    from diffusers import (
        AutoencoderKL,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from imgdiff.tiny.vocab import clip_tokenizer

    tokenizer = clip_tokenizer(work / "tok")
    tokenizer_2 = clip_tokenizer(work / "tok2", pad_token="!")

    def text_config(fields: dict[str, Any]) -> Any:
        ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
        return CLIPTextConfig(vocab_size=49408, max_position_embeddings=77, pad_token_id=1, **ids, **fields)

    torch.manual_seed(0)
    with torch.device(device):
        parts = {
            "unet": UNet2DConditionModel(**SDXL_BASE_UNET),
            "vae": AutoencoderKL(**SDXL_VAE),
            "text_encoder": CLIPTextModel(text_config(SDXL_BASE_TEXT)),
            "text_encoder_2": CLIPTextModelWithProjection(text_config(SDXL_BASE_TEXT_2)),
        }
    for part in parts.values():
        part.to(dtype=torch.float16).eval()
    scheduler = sdxl_scheduler()
    pipe = StableDiffusionXLPipeline(
        tokenizer=tokenizer, tokenizer_2=tokenizer_2, scheduler=scheduler, add_watermarker=False, **parts
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_sdxl(work: Path) -> Any:
    from diffusers import DiffusionPipeline

    from imgdiff.tiny.diffusion import make_tiny_sdxl

    pipe = DiffusionPipeline.from_pretrained(str(make_tiny_sdxl(work / "sdxl")))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run_once(pipe: Any, pairs: int, config: P2PConfig, cuda: bool) -> tuple[float, float | None, bool]:
    """(seconds, peak GiB or None, all finite) of one call."""
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    out = generate_pairs(pipe, PAIRS[:pairs], config)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    return seconds, peak, all(pair.finite for pair in out)


def measure(pipe: Any, size: int, steps: int, repeats: int, warmup_steps: int, cuda: bool) -> dict[str, Any]:
    # the paper's settings, prior on, with the self-attention limit pinned at 32x32 queries: the same
    # as the paper's from-size rule at 1024 px, and at the tiny 64 px (where the rule gives 4) it keeps
    # the tiny run replacing self-attention, as the full one does
    base = P2PConfig(steps=steps, height=size, width=size, self_max_queries=32 * 32)
    configs = {"stock": P2PConfig(steps=steps, height=size, width=size, edit=False), "p2p": base}
    modes = [(name, pairs) for pairs in (1, 4) for name in ("stock", "p2p")]
    vae_dtypes = watch_vae(pipe)
    for name, pairs in modes:  # warm-up: same shapes, fewer steps, not timed
        warm = P2PConfig(**{**configs[name].__dict__, "steps": warmup_steps})
        run_once(pipe, pairs, warm, cuda)
    print("warm-up done", file=sys.stderr)
    times: dict[str, list[float]] = {f"{n}_{p}": [] for n, p in modes}
    peaks: dict[str, float] = {}
    finite = True
    for _ in range(repeats):
        for name, pairs in modes:
            seconds, peak, ok = run_once(pipe, pairs, configs[name], cuda)
            print(
                f"{name} {pairs} pair(s)/call: {seconds / pairs:.3f} s/pair, peak {peak} GiB", file=sys.stderr
            )
            times[f"{name}_{pairs}"].append(seconds / pairs)
            if peak is not None:
                peaks[f"{name}_{pairs}"] = max(peak, peaks.get(f"{name}_{pairs}", 0.0))
            finite &= ok
    result: dict[str, Any] = {}
    for key, values in times.items():
        result[key] = {
            "s_per_pair": {
                "median": round(statistics.median(values), 4),
                "min": round(min(values), 4),
                "max": round(max(values), 4),
            },
            "peak_gib": round(peaks[key], 2) if key in peaks else None,
        }
    for pairs in (1, 4):
        stock, p2p = result[f"stock_{pairs}"], result[f"p2p_{pairs}"]
        result[f"p2p_over_stock_{pairs}"] = round(
            p2p["s_per_pair"]["median"] / stock["s_per_pair"]["median"], 3
        )
        if stock["peak_gib"]:
            result[f"peak_ratio_{pairs}"] = round(p2p["peak_gib"] / stock["peak_gib"], 3)
    result["vae_decode_dtypes"] = sorted(set(vae_dtypes))
    result["all_finite"] = finite  # random weights may overflow; this does not change the timing
    return result


def watch_vae(pipe: Any) -> list[str]:
    """Records the VAE's dtype at each decode (SDXL's VAE must run in float32: force_upcast)."""
    decode, seen = pipe.vae.decode, []

    def watched(*args: Any, **kwargs: Any) -> Any:
        seen.append(str(pipe.vae.dtype).removeprefix("torch."))
        return decode(*args, **kwargs)

    pipe.vae.decode = watched
    return seen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny SDXL on the CPU (64 px, 5 steps)")
    parser.add_argument("--size", type=int, default=None, help="image side in pixels (1024; tiny: 64)")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (50; tiny: 5)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup-steps", type=int, default=2)
    args = parser.parse_args(argv)
    cuda = not args.tiny
    if cuda and not torch.cuda.is_available():
        print("p2p_speed: no CUDA GPU visible; use --tiny for the CPU version", file=sys.stderr)
        return 2
    size = args.size or (64 if args.tiny else 1024)
    steps = args.steps or (5 if args.tiny else 50)
    if args.tiny:
        torch.set_num_threads(1)  # tiny shapes gain nothing from threads, and timings stay steadier
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        pipe = tiny_sdxl(Path(tmp)) if args.tiny else full_size_sdxl("cuda", Path(tmp))
        build_s = time.perf_counter() - started
        print(f"built in {build_s:.1f} s", file=sys.stderr)
        result = measure(pipe, size, steps, args.repeats, args.warmup_steps, cuda)
    import diffusers

    report = {
        "benchmark": "p2p_speed",
        "mode": "tiny-cpu" if args.tiny else "sdxl-base-cuda-fp16",
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "size": size,
        "steps": steps,
        "repeats": args.repeats,
        "unet_parameters_m": round(sum(p.numel() for p in pipe.unet.parameters()) / 1e6, 1),
        "build_s": round(build_s, 1),
        **result,
        "goals": GOALS,
    }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
