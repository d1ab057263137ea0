"""Instruction editors built in code: tiny random InstructPix2Pix, FLUX.1 Kontext and Qwen-Image-Edit
pipelines (`imgdiff models make-tiny`'s `ip2p`, `kontext`, `qwen_edit`), saved as diffusers folders and
loaded through the same `DiffusionPipeline.from_pretrained` path as the published ones. The full-size
architectures' fields are here too (`FULL`), so benchmarks can build them with random weights.

Sizes follow what each pipeline needs, not the smallest that loads. Both transformer pipelines
resize the conditioning image to about one megapixel whatever the output size, so their tiny VAEs
downscale as much as real ones or more (a 2x VAE would hand the tiny transformer a quarter of a
million image tokens), and keep no attention at 128x128 latents (16K tokens, a gigabyte per image
on CPU): the FLUX one has no middle attention block, the Qwen one downscales 16x (its middle block
always attends), so its working sizes are multiples of 32;
- the Qwen vision tower's processor keeps at most 112x112 pixels of the prompt image.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from imgdiff.tiny.diffusion import SD_BETAS, sd15_components, text_config
from imgdiff.tiny.seeded import fixed_seed
from imgdiff.tiny.vocab import TINY_WORDS, clip_tokenizer, tiny_tokenizer

# The published checkpoints' architecture fields (black-forest-labs/FLUX.1-Kontext-dev,
# Qwen/Qwen-Image-Edit, timbrooks/instruct-pix2pix), for full-size random builds in benchmarks.
FULL: dict[str, dict[str, Any]] = {
    "ip2p_unet": {
        "sample_size": 64, "in_channels": 8, "out_channels": 4, "layers_per_block": 2,
        "block_out_channels": (320, 640, 1280, 1280), "cross_attention_dim": 768, "attention_head_dim": 8,
        "down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        "up_block_types": ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    },
    "clip_l_text": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                    "num_attention_heads": 12, "hidden_act": "quick_gelu", "projection_dim": 768},
    "sd_vae": {"block_out_channels": (128, 256, 512, 512), "layers_per_block": 2, "latent_channels": 4,
               "down_block_types": ("DownEncoderBlock2D",) * 4, "up_block_types": ("UpDecoderBlock2D",) * 4},
    "flux_transformer": {
        "patch_size": 1, "in_channels": 64, "num_layers": 19, "num_single_layers": 38,
        "attention_head_dim": 128, "num_attention_heads": 24, "joint_attention_dim": 4096,
        "pooled_projection_dim": 768, "guidance_embeds": True, "axes_dims_rope": (16, 56, 56),
    },
    "flux_vae": {"block_out_channels": (128, 256, 512, 512), "layers_per_block": 2, "latent_channels": 16,
                 "down_block_types": ("DownEncoderBlock2D",) * 4, "up_block_types": ("UpDecoderBlock2D",) * 4,
                 "use_quant_conv": False, "use_post_quant_conv": False,
                 "scaling_factor": 0.3611, "shift_factor": 0.1159},
    "t5_xxl": {"d_model": 4096, "d_kv": 64, "d_ff": 10240, "num_layers": 24, "num_heads": 64,
               "feed_forward_proj": "gated-gelu", "vocab_size": 32128},
    "qwen_transformer": {
        "patch_size": 2, "in_channels": 64, "out_channels": 16, "num_layers": 60, "attention_head_dim": 128,
        "num_attention_heads": 24, "joint_attention_dim": 3584, "guidance_embeds": False,
        "axes_dims_rope": (16, 56, 56),
    },
    "qwen_vae": {"base_dim": 96, "z_dim": 16, "dim_mult": [1, 2, 4, 4], "num_res_blocks": 2,
                 "temperal_downsample": [False, True, True]},
    "qwen_vl_text": {"hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
                     "num_attention_heads": 28, "num_key_value_heads": 4,
                     "rope_scaling": {"type": "mrope", "rope_type": "default",
                                      "mrope_section": [16, 24, 24]}},
    "qwen_vl_vision": {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
                       "out_hidden_size": 3584, "fullatt_block_indexes": [7, 15, 23, 31]},
}  # fmt: skip

# Flux's flow-matching schedule with resolution-dependent shift (FLUX.1's scheduler config).
FLUX_SCHEDULER = {"base_image_seq_len": 256, "base_shift": 0.5, "max_image_seq_len": 4096,
                  "max_shift": 1.15, "shift": 3.0, "use_dynamic_shifting": True}  # fmt: skip
# Qwen-Image's: exponential shift, longer sequences.
QWEN_SCHEDULER = {"base_image_seq_len": 256, "base_shift": 0.5, "max_image_seq_len": 8192, "max_shift": 0.9,
                  "shift": 1.0, "shift_terminal": 0.02, "time_shift_type": "exponential",
                  "use_dynamic_shifting": True}  # fmt: skip
QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                 "<|image_pad|>", "<|video_pad|>"]  # fmt: skip


def make_tiny_instruct_pix2pix(out: Path) -> Path:
    """A tiny random InstructPix2Pix pipeline (SD 1.x with an 8-channel UNet input) saved at `out`."""
    from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionInstructPix2PixPipeline

    with fixed_seed(), tempfile.TemporaryDirectory() as work:
        # timbrooks/instruct-pix2pix's scheduler: Euler ancestral on SD 1.x's betas
        scheduler = EulerAncestralDiscreteScheduler(**SD_BETAS)
        components = sd15_components(Path(work), scheduler, in_channels=8)
        StableDiffusionInstructPix2PixPipeline(**components).save_pretrained(out)
    return out


def make_tiny_flux_kontext(out: Path) -> Path:
    """A tiny random FLUX.1 Kontext pipeline (CLIP + T5 text, a 1 + 1 layer transformer) at `out`."""
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        FluxKontextPipeline,
        FluxTransformer2DModel,
    )
    from transformers import CLIPTextModel, T5Config, T5EncoderModel

    with fixed_seed(), tempfile.TemporaryDirectory() as work:
        tokenizer = clip_tokenizer(Path(work))
        tokenizer_2 = t5_tokenizer()
        t5 = T5Config(vocab_size=len(tokenizer_2), d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                      pad_token_id=tokenizer_2.pad_token_id,
                      eos_token_id=tokenizer_2.eos_token_id)  # fmt: skip
        pipe = FluxKontextPipeline(
            scheduler=FlowMatchEulerDiscreteScheduler(**FLUX_SCHEDULER),
            vae=AutoencoderKL(
                block_out_channels=(4, 8, 8, 8),
                layers_per_block=1,
                latent_channels=4,
                norm_num_groups=4,
                down_block_types=("DownEncoderBlock2D",) * 4,
                up_block_types=("UpDecoderBlock2D",) * 4,
                use_quant_conv=False,
                use_post_quant_conv=False,
                scaling_factor=0.3611,
                shift_factor=0.1159,
            ),  # fmt: skip
            text_encoder=CLIPTextModel(text_config(tokenizer)),
            tokenizer=tokenizer,
            text_encoder_2=T5EncoderModel(t5),
            tokenizer_2=tokenizer_2,
            transformer=FluxTransformer2DModel(
                patch_size=1,
                in_channels=16,
                num_layers=1,
                num_single_layers=1,
                attention_head_dim=16,
                num_attention_heads=2,
                joint_attention_dim=32,
                pooled_projection_dim=32,
                guidance_embeds=True,
                axes_dims_rope=(4, 4, 8),
            ),  # fmt: skip
        )
        pipe.save_pretrained(out)
    return out


def make_tiny_qwen_image_edit(out: Path) -> Path:
    """A tiny random Qwen-Image-Edit pipeline (a Qwen2.5-VL text encoder that sees the image) at `out`."""
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImageEditPipeline,
        QwenImageTransformer2DModel,
    )
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLProcessor
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    tokenizer = tiny_tokenizer(QWEN_SPECIALS, "", eos="<|im_end|>", pad="<|endoftext|>")
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in QWEN_SPECIALS}
    config = Qwen2_5_VLConfig(
        text_config={
            "hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
            "num_key_value_heads": 2, "vocab_size": len(tokenizer), "rope_theta": 1000000.0,
            "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
            "rope_scaling": {"type": "mrope", "rope_type": "default", "mrope_section": [1, 1, 2]},
        },
        vision_config={"depth": 2, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2,
                       "out_hidden_size": 16, "fullatt_block_indexes": [1]},
        vocab_size=len(tokenizer),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )  # fmt: skip
    image_processor = Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=112 * 112)
    with fixed_seed():
        pipe = QwenImageEditPipeline(
            scheduler=FlowMatchEulerDiscreteScheduler(**QWEN_SCHEDULER),
            vae=AutoencoderKLQwenImage(
                base_dim=8,
                z_dim=4,
                dim_mult=[1, 2, 2, 2],
                num_res_blocks=1,
                temperal_downsample=[False, True, True],
                latents_mean=[0.0] * 4,
                latents_std=[1.0] * 4,
            ),  # fmt: skip
            text_encoder=Qwen2_5_VLForConditionalGeneration(config),
            tokenizer=tokenizer,
            processor=Qwen2VLProcessor(
                image_processor=image_processor, tokenizer=tokenizer, video_processor=Qwen2VLVideoProcessor()
            ),
            transformer=QwenImageTransformer2DModel(
                patch_size=2,
                in_channels=16,
                out_channels=4,
                num_layers=2,
                attention_head_dim=16,
                num_attention_heads=2,
                joint_attention_dim=16,
                guidance_embeds=False,
                axes_dims_rope=(8, 4, 4),
            ),  # fmt: skip
        )
        pipe.save_pretrained(out)
    return out


def t5_tokenizer() -> Any:
    """A T5 tokenizer (Unigram, built in code): T5's special tokens, each tiny word whole after the
    word-start symbol, and every letter, digit and punctuation mark so any prompt tokenizes."""
    import string

    from transformers import T5Tokenizer

    words = dict.fromkeys(TINY_WORDS.split() + ["replace", "remove", "add"])
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    vocab += [(f"\u2581{word}", -1.0) for word in words]
    vocab += [(char, -5.0) for char in string.ascii_letters + string.digits + string.punctuation]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=512)
