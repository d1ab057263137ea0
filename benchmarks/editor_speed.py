"""Instruction editors (`generate`/`instruct`): seconds per edited pair and peak memory per family.

    python benchmarks/editor_speed.py --full   # CUDA: full-size architectures, random weights, presets
    python benchmarks/editor_speed.py --tiny   # CPU: the tiny pipelines of `make-tiny`, 64 px, 2 steps

Full mode builds each family's published architecture from the fields in `imgdiff.tiny.editing.FULL`
with random weights directly on the GPU in bfloat16 (float16 for InstructPix2Pix, as its model card
runs it), nothing downloaded: InstructPix2Pix (SD 1.5 UNet with 8 input channels, CLIP ViT-L text, SD
VAE), FLUX.1 Kontext (12 B transformer, CLIP-L and T5-XXL text, FLUX VAE), Qwen-Image-Edit (20 B
transformer, Qwen2.5-VL-7B text encoder with its vision tower, Qwen-Image VAE). The tokenizers are
the tiny ones (the prompts are a few words, so the text cost is the real one within a few tokens);
the Qwen image processor is the published one (28 px patches up to its own pixel limit). FLOPs and
memory traffic are the real models', so the times are.

Each family runs its preset (steps, guidance, resolution) on a 640 x 480 photo through
`EditingModel.edit`, the code path of the stage: a warm-up call with 2 steps, then `--repeats` timed
calls of one edit each, between CUDA synchronisations, with the peak memory counter reset before
each. Prints one JSON object: per family the working size, steps, seconds per pair (median, min,
max) and peak GiB, and for comparison Prompt-to-Prompt SDXL's measured figure (from
`p2p_speed.py`'s docstring, not measured here). Families are freed one after another.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imgdiff.models.editing import FAMILIES, EditingModel, EditRequest, EditSampling
from imgdiff.stages.generate.instruct import InstructGenerate, working_size
from imgdiff.tiny import editing as tiny

# Prompt-to-Prompt SDXL-base, 1024 px, 50 steps, fp16, one pair per call, one H100 (p2p_speed.py).
P2P_SDXL_H100 = {"seconds_per_pair": 4.71, "peak_gib": 14.97}
PRESET_OF = {family: family for family in FAMILIES.values()}
PHOTO = (480, 640)  # height, width: a typical COCO photo


def full_pipeline(family: str, work: Path, device: str = "cuda") -> Any:
    """The family's published architecture with random weights on `device` (the GPU; `meta` checks
    the layout without memory)."""
    dtype = torch.float16 if family == "instruct-pix2pix" else torch.bfloat16
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # build in the final dtype: fp32 first would not fit the 20 B model
    try:
        torch.manual_seed(0)
        pipe = _BUILDERS[family](work, torch.device(device))
    finally:
        torch.set_default_dtype(default)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _instruct_pix2pix(work: Path, device: torch.device) -> Any:
    from diffusers import (
        AutoencoderKL,
        EulerAncestralDiscreteScheduler,
        StableDiffusionInstructPix2PixPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    from imgdiff.tiny.vocab import clip_tokenizer

    tokenizer = clip_tokenizer(work / "clip")
    text = CLIPTextConfig(vocab_size=49408, max_position_embeddings=77, **tiny.FULL["clip_l_text"])
    with device:  # the models only: schedulers compute their tables with numpy
        vae, unet = AutoencoderKL(**tiny.FULL["sd_vae"]), UNet2DConditionModel(**tiny.FULL["ip2p_unet"])
        text_encoder = CLIPTextModel(text)
    return StableDiffusionInstructPix2PixPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=EulerAncestralDiscreteScheduler(
            beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1
        ),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _flux_kontext(work: Path, device: torch.device) -> Any:
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        FluxKontextPipeline,
        FluxTransformer2DModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    from imgdiff.tiny.vocab import clip_tokenizer

    text = CLIPTextConfig(vocab_size=49408, max_position_embeddings=77, **tiny.FULL["clip_l_text"])
    with device:
        models = {
            "vae": AutoencoderKL(**tiny.FULL["flux_vae"]),
            "text_encoder": CLIPTextModel(text),
            "text_encoder_2": T5EncoderModel(T5Config(**tiny.FULL["t5_xxl"])),
            "transformer": FluxTransformer2DModel(**tiny.FULL["flux_transformer"]),
        }
    return FluxKontextPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**tiny.FLUX_SCHEDULER),
        tokenizer=clip_tokenizer(work / "clip"),
        tokenizer_2=tiny.t5_tokenizer(),
        **models,
    )


def _qwen_image_edit(work: Path, device: torch.device) -> Any:
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImageEditPipeline,
        QwenImageTransformer2DModel,
    )
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLProcessor
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    from imgdiff.tiny.vocab import tiny_tokenizer

    tokenizer = tiny_tokenizer(tiny.QWEN_SPECIALS, "", eos="<|im_end|>", pad="<|endoftext|>")
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in tiny.QWEN_SPECIALS}
    config = Qwen2_5_VLConfig(
        text_config={**tiny.FULL["qwen_vl_text"], "vocab_size": 152064},
        vision_config=tiny.FULL["qwen_vl_vision"],
        vocab_size=152064,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    with device:
        models = {
            "vae": AutoencoderKLQwenImage(**tiny.FULL["qwen_vae"]),
            "text_encoder": Qwen2_5_VLForConditionalGeneration(config),
            "transformer": QwenImageTransformer2DModel(**tiny.FULL["qwen_transformer"]),
        }
    return QwenImageEditPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**tiny.QWEN_SCHEDULER),
        tokenizer=tokenizer,
        processor=Qwen2VLProcessor(
            image_processor=Qwen2VLImageProcessor(),
            tokenizer=tokenizer,
            video_processor=Qwen2VLVideoProcessor(),
        ),
        **models,
    )


_BUILDERS = {
    "instruct-pix2pix": _instruct_pix2pix,
    "flux-kontext": _flux_kontext,
    "qwen-image-edit": _qwen_image_edit,
}
_TINY = {
    "instruct-pix2pix": tiny.make_tiny_instruct_pix2pix,
    "flux-kontext": tiny.make_tiny_flux_kontext,
    "qwen-image-edit": tiny.make_tiny_qwen_image_edit,
}


def tiny_pipeline(family: str, work: Path) -> Any:
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(str(_TINY[family](work / family)))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def measure(model: EditingModel, resolution: int, steps: int, repeats: int, cuda: bool) -> dict[str, Any]:
    """Seconds per pair and peak GiB of `repeats` one-edit calls at the family's preset."""
    preset = InstructGenerate.PRESETS[PRESET_OF[model.family]]
    sampling = EditSampling(
        steps, preset["guidance"], preset.get("image_guidance"), preset.get("negative_prompt")
    )
    height, width = working_size(*PHOTO, resolution, model.multiple_of)
    photo = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    request = EditRequest(image=photo, instruction="replace the cat with a dog", seed=1)
    model.edit(
        [request], EditSampling(2, sampling.guidance, sampling.image_guidance, sampling.negative_prompt)
    )
    seconds, peaks = [], []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        model.edit([request], sampling)
        if cuda:
            torch.cuda.synchronize()
            peaks.append(torch.cuda.max_memory_allocated() / 2**30)
        seconds.append(time.perf_counter() - started)
    return {
        "working_size": [width, height],
        "steps": steps,
        "seconds_per_pair": {"median": statistics.median(seconds), "min": min(seconds), "max": max(seconds)},
        "peak_gib": max(peaks) if peaks else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--full", action="store_true", help="full-size architectures on the GPU, presets")
    mode.add_argument("--tiny", action="store_true", help="tiny pipelines on the CPU (64 px, 2 steps)")
    parser.add_argument("--only", default=",".join(FAMILIES.values()), help="families, comma-separated")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    families = [f.strip() for f in args.only.split(",") if f.strip()]
    unknown = sorted(set(families) - set(FAMILIES.values()))
    if unknown:
        print(
            f"editor_speed: unknown families {unknown}; choose from {sorted(FAMILIES.values())}",
            file=sys.stderr,
        )
        return 2
    if args.full and not torch.cuda.is_available():
        print("editor_speed: no CUDA GPU visible; use --tiny for the CPU version", file=sys.stderr)
        return 2
    results: dict[str, Any] = {"mode": "full" if args.full else "tiny", "photo": [PHOTO[1], PHOTO[0]]}
    with tempfile.TemporaryDirectory() as work:
        for family in families:
            preset = InstructGenerate.PRESETS[PRESET_OF[family]]
            if args.full:
                pipe = full_pipeline(family, Path(work))
                resolution, steps = preset["resolution"], preset["steps"]
            else:
                pipe = tiny_pipeline(family, Path(work))
                resolution, steps = 64, 2
            figures = measure(EditingModel(pipe, family, family), resolution, steps, args.repeats, args.full)
            results[family] = figures
            print(f"{family}: {json.dumps(figures)}", file=sys.stderr)
            del pipe
            gc.collect()
            if args.full:
                torch.cuda.empty_cache()
    if args.full:
        results["p2p_sdxl_h100_reference"] = P2P_SDXL_H100
        results["device"] = torch.cuda.get_device_name()
    else:
        results["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
