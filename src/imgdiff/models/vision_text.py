"""The `vl_generator` role on transformers: a vision-language model run in-process (LLaVA-NeXT).

The describe stage asks it to caption regions and to describe the difference between two boxed
regions (METHOD.md section 4). Loading goes through `AutoProcessor` and
`AutoModelForImageTextToText`, which serve LLaVA-NeXT (`LlavaNextForConditionalGeneration`) and
other image-text-to-text families with a chat template. Each prompt is one user turn: its images
first, then its text; the processor's chat template writes the image placeholders and the
processor expands each into that image's number of tokens. A batch is padded on the LEFT with an
attention mask (the reference pads LLaVA batches without one, which corrupts shorter prompts);
decoding is shared with the text role (`text.generate_new_tokens`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from imgdiff.models.loading import device_of, dtype_of, locate
from imgdiff.models.roles import Generation, VisionPrompt
from imgdiff.models.text import generate_new_tokens, needs_special_tokens, prepare_tokenizer, tiny_tokenizer

if TYPE_CHECKING:
    from imgdiff.models import ModelEntry

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


def load(name: str, entry: ModelEntry) -> TransformersVisionTextGenerator:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = locate(name, entry)
    device = device_of(entry)
    processor = AutoProcessor.from_pretrained(path, revision=entry.revision)
    model = AutoModelForImageTextToText.from_pretrained(
        path, revision=entry.revision, dtype=dtype_of(entry, device)
    )
    return TransformersVisionTextGenerator(model.to(device).eval(), processor)


class TransformersVisionTextGenerator:
    """`roles.VisionTextGenerator` on a transformers image-text-to-text model and its processor
    (which must have a chat template)."""

    def __init__(self, model: Any, processor: Any) -> None:
        self.model = model
        self.processor = processor
        self.tokenizer = prepare_tokenizer(processor.tokenizer)

    def generate(self, prompts: list[VisionPrompt], sampling: Generation) -> list[str]:
        if not prompts:
            return []
        new_tokens = generate_new_tokens(self.model, self.inputs(prompts), sampling, self.tokenizer)
        return [text.strip() for text in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]

    def inputs(self, prompts: list[VisionPrompt]) -> Any:
        """The model inputs of a batch: chat-templated, images processed, left-padded, with the
        attention mask."""
        from PIL import Image

        texts = [
            self.processor.apply_chat_template(chat_of(prompt), add_generation_prompt=True, tokenize=False)
            for prompt in prompts
        ]
        # The processor matches images to placeholders in order, across the whole batch.
        images = [Image.fromarray(image) for prompt in prompts for image in prompt.images]
        return self.processor(
            images=images or None,
            text=texts,
            padding=True,
            return_tensors="pt",
            add_special_tokens=needs_special_tokens(self.tokenizer, texts[0]),
        )


def chat_of(prompt: VisionPrompt) -> list[dict[str, Any]]:
    """The chat of one prompt: an optional system turn, then one user turn with the images (in
    order) before the text."""
    chat: list[dict[str, Any]] = []
    if prompt.system:
        chat.append({"role": "system", "content": [{"type": "text", "text": prompt.system}]})
    parts = [{"type": "image"} for _ in prompt.images] + [{"type": "text", "text": prompt.text}]
    chat.append({"role": "user", "content": parts})
    return chat


# -- tiny checkpoint for tests and smoke runs --------------------------------------------------------

TINY_PINPOINTS = [[32, 32], [32, 64], [64, 32], [64, 64]]  # any-resolution grids, as LLaVA-NeXT's 336 px ones


def make_tiny(out: Path) -> Path:
    """A tiny random LLaVA-NeXT (CLIP vision tower, Llama LM) with its processor, saved as a
    transformers folder. Images are seen at 32 px tiles; an image's token count depends on its
    aspect ratio, as in the real model."""
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
    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=32,
        patch_size=8,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=4096,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        initializer_range=0.2,  # clear top-1 margins, so greedy decoding is stable (see text.make_tiny)
    )
    config = LlavaNextConfig(
        vision_config=vision.to_dict(),
        text_config=text.to_dict(),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        image_grid_pinpoints=TINY_PINPOINTS,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        initializer_range=0.2,
    )
    torch.manual_seed(0)
    model = LlavaNextForConditionalGeneration(config).eval()
    image_processor = LlavaNextImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}, image_grid_pinpoints=TINY_PINPOINTS
    )
    processor = LlavaNextProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # the CLS token the vision tower adds (and "default" drops)
        chat_template=VICUNA_TEMPLATE,
    )
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out
