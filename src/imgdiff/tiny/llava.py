"""LLaVA-NeXT built in code with random weights, at any size: the tiny checkpoint
(`imgdiff models make-tiny`'s `llava`), and full-size models for benchmarks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from imgdiff.tiny.clip import TINY_VISION
from imgdiff.tiny.text import TINY_INITIALIZER_RANGE, TINY_LM
from imgdiff.tiny.vocab import tiny_tokenizer

# Vicuna-style, as llava-hf's LLaVA-NeXT (vicuna) checkpoints render a chat: images first in a turn.
VICUNA_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] != 'system' %}{{ message['role'].upper() + ': ' }}{% endif %}"
    "{% if message['content'] is string %}{{ message['content'] + ' ' }}{% else %}"
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<image>\n' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] + ' ' }}{% endif %}{% endfor %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)

TINY_PINPOINTS = [[32, 32], [32, 64], [64, 32], [64, 64]]  # any-resolution grids, as LLaVA-NeXT's 336 px ones


def build_llava_next(
    vision: dict[str, Any],
    text: dict[str, Any],
    pinpoints: list[list[int]],
    vision_feature_layer: int,
    initializer_range: float | None = None,
    device: str = "cpu",
    dtype: Any = None,
) -> tuple[Any, Any]:
    """A LLaVA-NeXT (CLIP vision tower, Llama LM) with random weights (seed 0), built on `device` in
    `dtype` (None: torch's default), and its processor, whose tokenizer is the tiny one (ids only
    need to exist). `vision` and `text` are CLIPVisionConfig and LlamaConfig fields; the LM's
    vocabulary is the tokenizer's unless `text` names a larger one. Images are seen in tiles of the
    tower's `image_size` on the `pinpoints` grids, so an image's token count depends on its aspect
    ratio, as in the real model. `initializer_range` is the spread of the LM's and projector's
    random weights (None: transformers' default)."""
    import torch
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextImageProcessor,
        LlavaNextProcessor,
    )

    tokenizer = tiny_tokenizer(
        ["<unk>", "<s>", "</s>", "<pad>", "<image>"], VICUNA_TEMPLATE, eos="</s>", pad="<pad>"
    )
    spread = {} if initializer_range is None else {"initializer_range": initializer_range}
    text_config = LlamaConfig(
        **{"vocab_size": len(tokenizer), **text},
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **spread,
    )
    config = LlavaNextConfig(
        vision_config=CLIPVisionConfig(**vision).to_dict(),
        text_config=text_config.to_dict(),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        image_grid_pinpoints=pinpoints,
        vision_feature_layer=vision_feature_layer,
        vision_feature_select_strategy="default",
        **spread,
    )
    with torch.random.fork_rng(devices=[]), torch.device(device):  # the caller's random state untouched
        torch.manual_seed(0)
        model = LlavaNextForConditionalGeneration._from_config(config, dtype=dtype).eval()
    tile = vision["image_size"]
    image_processor = LlavaNextImageProcessor(
        size={"shortest_edge": tile},
        crop_size={"height": tile, "width": tile},
        image_grid_pinpoints=pinpoints,
    )
    processor = LlavaNextProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=vision["patch_size"],
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # the CLS token the vision tower adds (and "default" drops)
        chat_template=VICUNA_TEMPLATE,
    )
    return model, processor


def make_tiny(out: Path) -> Path:
    """A tiny random LLaVA-NeXT saved as a transformers folder: the tiny CLIP vision tower (32 px
    tiles) and a Llama the size of `text.make_tiny`'s LM."""
    model, processor = build_llava_next(
        vision=TINY_VISION,
        text={**TINY_LM, "num_key_value_heads": 4},
        pinpoints=TINY_PINPOINTS,
        vision_feature_layer=-1,
        initializer_range=TINY_INITIALIZER_RANGE,
    )
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out
