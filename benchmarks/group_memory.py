"""Weight memory per model group of the paper's model set, from the architectures (no download).

    python benchmarks/group_memory.py

Builds each full-size architecture on the meta device (no memory, no weights): Qwen2-7B, SDXL base
(UNet, both text encoders, VAE), CLIP and BLIP ITM large as the benchmarks' full-size builders
configure them, FastSAM-x (on the CPU: ultralytics does not build on meta, 72 M parameters) and
LLaVA-NeXT-7B (the paper's describer). Groups come from `Plan.groups()` of the built-in `img-diff`
recipe; bytes are parameters x the entry's dtype bytes (and x 2 for float16 everywhere). Weights
only: activations and the CUDA context come on top (measure them with benchmarks/gpu_check.sh).
The counting is the package's (`imgdiff.engine.weights`, which the local engine uses to choose
models per group); `table_params_millions` shows its per-family table beside the counts made here,
and `choice_24gb` what the local engine chooses for the recipe on a 24 GB card.
`--device cuda` also places each group's float16 weights on the GPU, one group after another
(as the group-wise mode would), and reports the measured peak and the place/release seconds.
Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))

from imgdiff.engine.weights import DTYPE_BYTES, GB, count, estimate  # noqa: E402

QWEN2_7B = {"vocab_size": 152064, "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
            "num_attention_heads": 28, "num_key_value_heads": 4, "tie_word_embeddings": False}  # fmt: skip
SDXL_VAE = {"in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 2,
            "block_out_channels": (128, 256, 512, 512), "down_block_types": ("DownEncoderBlock2D",) * 4,
            "up_block_types": ("UpDecoderBlock2D",) * 4}  # fmt: skip


def qwen() -> int:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    return [Qwen2ForCausalLM(Qwen2Config(**QWEN2_7B))]


def sdxl() -> int:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from imgdiff.tiny.diffusion import SDXL_BASE_TEXT, SDXL_BASE_TEXT_2, SDXL_BASE_UNET

    text = dict(vocab_size=49408, max_position_embeddings=77)
    return [
        UNet2DConditionModel(**SDXL_BASE_UNET),
        CLIPTextModel(CLIPTextConfig(**SDXL_BASE_TEXT, **text)),
        CLIPTextModelWithProjection(CLIPTextConfig(**SDXL_BASE_TEXT_2, **text)),
        AutoencoderKL(**SDXL_VAE),
    ]


def clip() -> int:
    from transformers import CLIPConfig, CLIPModel
    from vision_scoring import CLIP_FULL

    text = {**CLIP_FULL["text_config"], "vocab_size": CLIP_FULL["vocab_size"]}
    text["max_position_embeddings"] = CLIP_FULL["window"]
    config = CLIPConfig(text_config=text, vision_config=CLIP_FULL["vision_config"])
    config.projection_dim = CLIP_FULL["projection_dim"]
    return [CLIPModel(config)]


def blip() -> int:
    from transformers import BlipConfig, BlipForImageTextRetrieval
    from vision_scoring import BLIP_FULL

    text = {**BLIP_FULL["text_config"], "vocab_size": BLIP_FULL["vocab_size"]}
    text["max_position_embeddings"] = BLIP_FULL["window"]
    config = BlipConfig(
        text_config=text,
        vision_config=BLIP_FULL["vision_config"],
        projection_dim=BLIP_FULL["projection_dim"],
        image_text_hidden_size=BLIP_FULL["image_text_hidden_size"],
    )
    return [BlipForImageTextRetrieval(config)]


def fastsam() -> int:
    from imgdiff.models.fastsam import import_ultralytics

    import_ultralytics()
    from ultralytics.nn.tasks import SegmentationModel, yaml_model_load

    config = yaml_model_load("yolov8x-seg.yaml")
    config.update(nc=1)
    return [SegmentationModel(config, nc=1, verbose=False)]


def llava_next() -> int:
    from generation_speed import FULL_TEXT, FULL_VISION, PINPOINTS
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaNextConfig, LlavaNextForConditionalGeneration

    config = LlavaNextConfig(
        vision_config=CLIPVisionConfig(**FULL_VISION),
        text_config=LlamaConfig(**FULL_TEXT),
        image_grid_pinpoints=PINPOINTS,
    )
    return [LlavaNextForConditionalGeneration(config)]


BUILDERS = {"qwen": qwen, "sdxl": sdxl, "clip": clip, "blip": blip, "fastsam": fastsam, "llava": llava_next}


def on_device(groups: list[dict[str, Any]], device: str) -> None:
    """Each group's models as float16 weights on `device`, one group at a time, as the group-wise
    mode loads them: the peak allocated memory, and the seconds to place and to release them
    (allocation only: no checkpoint is read, so a real load adds the disk)."""
    import gc
    import time

    cuda = device.startswith("cuda")
    for group in groups:
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        started = time.perf_counter()
        modules = [m for name in group["models"] for m in _build(name)]
        placed = [_place(m, device) for m in modules]
        if cuda:
            torch.cuda.synchronize(device)
        loaded = time.perf_counter()
        del modules, placed
        gc.collect()
        if cuda:
            group["peak_gb_measured"] = round(torch.cuda.max_memory_allocated(device) / GB, 2)
            torch.cuda.empty_cache()
            torch.cuda.synchronize(device)
        group["place_s"] = round(loaded - started, 2)
        group["release_s"] = round(time.perf_counter() - loaded, 2)


def _build(name: str) -> list[torch.nn.Module]:
    """A model's modules on the meta device; FastSAM-x on the CPU (its buffers need real data)."""
    if name == "fastsam":
        return fastsam()
    with torch.device("meta"):
        return BUILDERS[name]()


def _place(module: torch.nn.Module, device: str) -> torch.nn.Module:
    """Float16 weights on `device`: allocated, not initialised, for an architecture built on meta;
    copied for one built on the CPU (FastSAM-x, whose ultralytics model does not take `to_empty`)."""
    if next(module.parameters()).is_meta:
        return module.to(torch.float16).to_empty(device=device)
    return module.half().to(device)


def measure(device: str | None = None, only: set[str] | None = None) -> dict[str, Any]:
    from imgdiff.engine.choice import choose
    from imgdiff.engine.plan import Plan
    from imgdiff.recipe import load_recipe

    recipe = load_recipe("img-diff", ["source.path=unused.json"])
    params = {name: count(_build(name)) for name in BUILDERS}
    dtypes = {name: entry.dtype for name, entry in recipe.models.items()}
    groups = []
    for group in Plan(recipe, "", {}).groups():
        names = sorted({n for spec in group for n in spec.models().values()})
        groups.append({"stages": [spec.name for spec in group], "models": names})
    groups = [g for g in groups if only is None or set(g["models"]) <= only]
    for group in groups:
        names = group["models"]
        group["gb_recipe_dtypes"] = round(
            sum(params[n] * DTYPE_BYTES[dtypes.get(n, "float16")] for n in names) / GB, 2
        )
        group["gb_float16"] = round(sum(params[n] * 2 for n in names) / GB, 2)
    if device is not None:
        on_device(groups, device)
    return {
        "device": device,
        "params_millions": {name: round(n / 1e6, 1) for name, n in params.items()},
        "table_params_millions": {name: _table(recipe.models[name]) for name in params},
        "recipe_dtypes": dtypes,
        "groups": groups,
        "all_at_once_gb_float16": round(sum(params.values()) * 2 / GB, 2),
        "largest_group_gb_float16": max(g["gb_float16"] for g in groups),
        "choice_24gb": choose(Plan.make(recipe, ""), gpu_memory_gb=24).stats(),
    }


def _table(entry: Any) -> float | None:
    """What `imgdiff.engine.weights` finds for the entry where its weights are not local."""
    found = estimate(entry)
    return None if found is None else round(found.parameters / 1e6, 1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", help="also place each group's float16 weights there (e.g. cuda)")
    parser.add_argument("--only", help="comma-separated models: only the groups made of them")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    print(json.dumps(measure(args.device, only), indent=2))
