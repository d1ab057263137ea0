"""`diffusion` model entries (backend `diffusers`): SDXL, SDXL-Turbo and SD 1.5 pipelines by hub id or
local path, and the tiny random SD 1.5 / SDXL pipelines `imgdiff models make-tiny` builds.

`load` returns a `DiffusionModel`: the stock diffusers pipeline on its device and dtype with the progress
bar off, and its family ("sdxl" or "sd15"), which Prompt-to-Prompt (`imgdiff.p2p`) and the `generate`
stage need. The pipeline is never subclassed: editing happens through its public seams (attention
processors, `latents=`, `callback_on_step_end`). SDXL's VAE overflows in float16; its config sets
`force_upcast`, and the pipeline itself decodes in float32 then, so nothing here touches the VAE.

The tiny pipelines keep SDXL's block layout in miniature (a first level without attention, then self +
cross attention at two resolutions, more transformer layers at the lower one) so that the per-layer
rules of Prompt-to-Prompt (self-attention replacement only up to a query count, the prior at one
resolution) are exercised on CPU.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imgdiff.errors import UsageError
from imgdiff.models.loading import device_of, dtype_of, locate

if TYPE_CHECKING:
    from imgdiff.models import ModelEntry

FAMILIES = {"StableDiffusionXLPipeline": "sdxl", "StableDiffusionPipeline": "sd15"}


# stabilityai/stable-diffusion-xl-base-1.0: the fields of each component's config that define the
# architecture, so that full-size SDXL can be built without a download (on the meta device for
# layout tests, with random weights on a GPU for benchmarks).
SDXL_BASE_UNET = {
    "sample_size": 128,
    "in_channels": 4,
    "out_channels": 4,
    "layers_per_block": 2,
    "block_out_channels": (320, 640, 1280),
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    "attention_head_dim": (5, 10, 20),
    "transformer_layers_per_block": (1, 2, 10),
    "cross_attention_dim": 2048,
    "use_linear_projection": True,
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 2816,
    "norm_num_groups": 32,
}
SDXL_BASE_TEXT = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                  "num_attention_heads": 12, "hidden_act": "quick_gelu", "projection_dim": 768}  # fmt: skip
SDXL_BASE_TEXT_2 = {"hidden_size": 1280, "intermediate_size": 5120, "num_hidden_layers": 32,
                    "num_attention_heads": 20, "hidden_act": "gelu", "projection_dim": 1280}  # fmt: skip


def sdxl_scheduler() -> Any:
    """SDXL-base's published scheduler: Euler, scaled-linear betas, leading timesteps."""
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
        timestep_spacing="leading",
    )


@dataclass
class DiffusionModel:
    """A loaded text-to-image pipeline and what kind it is."""

    pipe: Any  # the diffusers pipeline, on its device and dtype
    family: str  # "sdxl" | "sd15"
    name: str  # the recipe's model entry name


def load(name: str, entry: ModelEntry) -> DiffusionModel:
    """Load a diffusers text-to-image pipeline folder (SDXL, SDXL-Turbo, SD 1.x)."""
    import torch
    from diffusers import DiffusionPipeline

    path = locate(name, entry)
    if not (path / "model_index.json").is_file():
        raise UsageError(f"model '{name}': {path} is not a diffusers pipeline folder (no model_index.json)")
    device = device_of(entry)
    dtype = dtype_of(entry, device)
    options = _dtype_option(dtype)
    # Hub repositories often hold both full and half weights; take the half ones when asked for half.
    if dtype == torch.float16 and any((path / "unet").glob("*.fp16.safetensors")):
        options["variant"] = "fp16"
    pipe = DiffusionPipeline.from_pretrained(str(path), **options)
    family = FAMILIES.get(type(pipe).__name__)
    if family is None:
        raise UsageError(
            f"model '{name}': {type(pipe).__name__} is not supported for generation; "
            f"use an SDXL or SD 1.x text-to-image pipeline"
        )
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return DiffusionModel(pipe=pipe, family=family, name=name)


def _dtype_option(dtype: Any) -> dict[str, Any]:
    from diffusers.pipelines import pipeline_utils

    # diffusers renamed `torch_dtype` to `dtype` (the old name now warns); older releases know only it
    return {"dtype": dtype} if hasattr(pipeline_utils, "_resolve_dtype") else {"torch_dtype": dtype}


# ---- tiny random pipelines -------------------------------------------------------------------------


def make_tiny_sd15(out: Path) -> Path:
    """A tiny random SD 1.x pipeline saved at `out` (about 1 MB)."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline
    from transformers import CLIPTextModel

    with _fixed_seed(), tempfile.TemporaryDirectory() as work:
        tokenizer = _tokenizer(Path(work))
        pipe = StableDiffusionPipeline(
            vae=_tiny_vae(),
            text_encoder=CLIPTextModel(_text_config(tokenizer)),
            tokenizer=tokenizer,
            unet=_tiny_unet(cross_attention_dim=32),
            # SD 1.x's published scheduler settings
            scheduler=DDIMScheduler(
                beta_start=0.00085,
                beta_end=0.012,
                beta_schedule="scaled_linear",
                clip_sample=False,
                set_alpha_to_one=False,
                steps_offset=1,
            ),
            safety_checker=None,
            feature_extractor=None,
            image_encoder=None,
            requires_safety_checker=False,
        )
        pipe.save_pretrained(out)
    return out


def make_tiny_sdxl(out: Path) -> Path:
    """A tiny random SDXL pipeline (two text encoders, micro-conditioning) saved at `out`."""
    from diffusers import StableDiffusionXLPipeline
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    time_dim, projection = 8, 32
    with _fixed_seed(), tempfile.TemporaryDirectory() as work:
        tokenizer = _tokenizer(Path(work) / "one")
        tokenizer_2 = _tokenizer(Path(work) / "two", pad_token="!")  # as SDXL's second tokenizer
        pipe = StableDiffusionXLPipeline(
            vae=_tiny_vae(),
            text_encoder=CLIPTextModel(_text_config(tokenizer)),
            text_encoder_2=CLIPTextModelWithProjection(_text_config(tokenizer_2, projection=projection)),
            tokenizer=tokenizer,
            tokenizer_2=tokenizer_2,
            # Cross-attention sees both encoders' hidden states side by side (32 + 32); the time
            # embedding takes six micro-conditioning numbers of `time_dim` each plus the pooled text.
            unet=_tiny_unet(
                cross_attention_dim=64,
                use_linear_projection=True,
                addition_embed_type="text_time",
                addition_time_embed_dim=time_dim,
                projection_class_embeddings_input_dim=6 * time_dim + projection,
            ),
            scheduler=sdxl_scheduler(),
            image_encoder=None,
            feature_extractor=None,
            force_zeros_for_empty_prompt=True,
        )
        pipe.save_pretrained(out)
    return out


@contextmanager
def _fixed_seed() -> Iterator[None]:
    """Deterministic weights without disturbing the caller's global random state."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        yield


def _tokenizer(work: Path, pad_token: str = "<|endoftext|>") -> Any:
    from imgdiff.models.tiny import clip_tokenizer

    return clip_tokenizer(work, pad_token=pad_token)


def _text_config(tokenizer: Any, projection: int = 32) -> Any:
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        hidden_size=32,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        projection_dim=projection,
        max_position_embeddings=77,
        hidden_act="gelu",
    )


def _tiny_unet(**extra: Any) -> Any:
    """SDXL's layout in miniature: level 0 without attention, levels 1 and 2 with self + cross attention
    (1 and 2 transformer layers); at 64 px with the 2x VAE below, 16x16 and 8x8 queries."""
    import torch
    from diffusers import UNet2DConditionModel
    from diffusers.models.attention_processor import Attention

    unet = UNet2DConditionModel(
        sample_size=32,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(8, 16, 32),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 2, 4),  # diffusers reads this as the number of heads
        transformer_layers_per_block=(1, 1, 2),
        norm_num_groups=4,
        **extra,
    )
    # Default initialisation gives nearly uniform attention, which hides any attention editing;
    # larger query/key weights give peaked maps, as trained models have.
    with torch.no_grad():
        for module in unet.modules():
            if isinstance(module, Attention):
                module.to_q.weight.mul_(4.0)
                module.to_k.weight.mul_(4.0)
    return unet


def _tiny_vae() -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(8, 16),
        latent_channels=4,
        norm_num_groups=4,
        sample_size=64,
    )
