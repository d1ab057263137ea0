"""The `vl_generator` role on transformers: a vision-language model run in-process (LLaVA-NeXT).

The describe stage asks it to caption regions and to describe the difference between two boxed
regions (METHOD.md section 4). Loading goes through `AutoProcessor` and
`AutoModelForImageTextToText`, which serve LLaVA-NeXT (`LlavaNextForConditionalGeneration`) and
other image-text-to-text families with a chat template. Each prompt is one user turn: its images
first, then its text; the processor's chat template writes the image placeholders and the
processor expands each into that image's number of tokens. A batch is padded on the LEFT with an
attention mask (the reference pads LLaVA batches without one, which corrupts shorter prompts);
batching and decoding are shared with the text role (`text.ChatGenerator`).

LLaVA-NeXT with random weights, tiny or full-size, is built in `imgdiff.tiny.llava`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from imgdiff.models.loading import load_transformers
from imgdiff.models.roles import VisionPrompt
from imgdiff.models.text import ChatGenerator, prepare_tokenizer

if TYPE_CHECKING:
    from imgdiff.models import ModelEntry


def load(name: str, entry: ModelEntry) -> TransformersVisionTextGenerator:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model, processor, _, _ = load_transformers(name, entry, AutoModelForImageTextToText, AutoProcessor)
    return TransformersVisionTextGenerator(model, processor)


class TransformersVisionTextGenerator(ChatGenerator):
    """`roles.VisionTextGenerator` on a transformers image-text-to-text model and its processor
    (which must have a chat template)."""

    def __init__(self, model: Any, processor: Any) -> None:
        self.model = model
        self.processor = processor
        self.tokenizer = prepare_tokenizer(processor.tokenizer)

    def inputs(self, prompts: list[VisionPrompt]) -> Any:
        """The model inputs of a batch: chat-templated, images processed, left-padded, with the
        attention mask."""
        from PIL import Image

        # The processor matches images to placeholders in order, across the whole batch.
        images = [Image.fromarray(image) for prompt in prompts for image in prompt.images]
        return self.chat_inputs(
            self.processor, [chat_of(prompt) for prompt in prompts], images=images or None
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
