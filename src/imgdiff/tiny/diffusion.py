"""Diffusion pipelines built in code: the tiny random SD 1.5 and SDXL pipelines (`imgdiff models
make-tiny`'s `sd15`, `sdxl` and the inpainting `sdxl_inpaint`, about 1 MB each), and full-size
SDXL's architecture fields, so that it can be built without a download (on the meta device for
layout tests, with random weights on a GPU for benchmarks).

The tiny pipelines keep SDXL's block layout in miniature (a first level without attention, then self +
cross attention at two resolutions, more transformer layers at the lower one) so that the per-layer
rules of Prompt-to-Prompt (self-attention replacement only up to a query count, the prior at one
resolution) are exercised on CPU.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from imgdiff.tiny.seeded import fixed_seed
from imgdiff.tiny.vocab import clip_tokenizer

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


# SD 1.x's published noise schedule (InstructPix2Pix, fine-tuned from SD 1.5, keeps it)
SD_BETAS = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "steps_offset": 1}


def make_tiny_sd15(out: Path) -> Path:
    """A tiny random SD 1.x pipeline saved at `out` (about 1 MB)."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    with fixed_seed(), tempfile.TemporaryDirectory() as work:
        # SD 1.x's published scheduler settings
        scheduler = DDIMScheduler(**SD_BETAS, clip_sample=False, set_alpha_to_one=False)
        StableDiffusionPipeline(**sd15_components(Path(work), scheduler)).save_pretrained(out)
    return out


def sd15_components(work: Path, scheduler: Any, in_channels: int = 4) -> dict[str, Any]:
    """The tiny SD 1.x pipeline's components (its tokenizer files go to `work`), random weights drawn
    in one order (VAE, text encoder, UNet) so that a fixed seed gives the same ones; a UNet with
    `in_channels` 8 is InstructPix2Pix's."""
    from transformers import CLIPTextModel

    tokenizer = clip_tokenizer(work)
    return {
        "vae": tiny_vae(),
        "text_encoder": CLIPTextModel(text_config(tokenizer)),
        "tokenizer": tokenizer,
        "unet": tiny_unet(in_channels=in_channels, cross_attention_dim=32),
        "scheduler": scheduler,
        "safety_checker": None,
        "feature_extractor": None,
        "image_encoder": None,
        "requires_safety_checker": False,
    }


def make_tiny_sdxl(out: Path) -> Path:
    """A tiny random SDXL pipeline (two text encoders, micro-conditioning) saved at `out`."""
    from diffusers import StableDiffusionXLPipeline
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    time_dim, projection = 8, 32
    with fixed_seed(), tempfile.TemporaryDirectory() as work:
        tokenizer = clip_tokenizer(Path(work) / "one")
        tokenizer_2 = clip_tokenizer(Path(work) / "two", pad_token="!")  # as SDXL's second tokenizer
        pipe = StableDiffusionXLPipeline(
            vae=tiny_vae(),
            text_encoder=CLIPTextModel(text_config(tokenizer)),
            text_encoder_2=CLIPTextModelWithProjection(text_config(tokenizer_2, projection=projection)),
            tokenizer=tokenizer,
            tokenizer_2=tokenizer_2,
            # Cross-attention sees both encoders' hidden states side by side (32 + 32); the time
            # embedding takes six micro-conditioning numbers of `time_dim` each plus the pooled text.
            unet=tiny_unet(
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


def make_tiny_sdxl_inpaint(out: Path) -> Path:
    """The tiny SDXL pipeline as an SDXL inpainting pipeline (the `inpainter` role's tiny model;
    SDXL-Turbo, the paper's inpainter, is a text-to-image SDXL loaded the same way)."""
    from diffusers import StableDiffusionXLInpaintPipeline, StableDiffusionXLPipeline

    with tempfile.TemporaryDirectory() as work:
        base = StableDiffusionXLPipeline.from_pretrained(str(make_tiny_sdxl(Path(work) / "sdxl")))
        StableDiffusionXLInpaintPipeline(**base.components).save_pretrained(out)
    return out


def text_config(tokenizer: Any, projection: int = 32) -> Any:
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


def tiny_unet(in_channels: int = 4, **extra: Any) -> Any:
    """SDXL's layout in miniature: level 0 without attention, levels 1 and 2 with self + cross attention
    (1 and 2 transformer layers); at 64 px with the 2x VAE below, 16x16 and 8x8 queries. InstructPix2Pix
    takes 8 input channels (the noisy latent beside the source image's)."""
    import torch
    from diffusers import UNet2DConditionModel
    from diffusers.models.attention_processor import Attention

    unet = UNet2DConditionModel(
        sample_size=32,
        in_channels=in_channels,
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


def tiny_vae() -> Any:
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
