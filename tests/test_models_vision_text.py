"""The `vl_generator` role on transformers, on the tiny LLaVA-NeXT that `make-tiny` builds: it loads
through the Auto classes, one or several images per prompt, batched greedy generation equals one
prompt at a time (left padding with a mask), seeded sampling does not depend on the batch."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from imgdiff.models import ModelEntry, ModelPool
from imgdiff.models.roles import Generation, VisionPrompt
from imgdiff.models.vision_text import TransformersVisionTextGenerator, chat_of
from test_models_text import compare_batched_with_single


def image(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# Different texts, image counts and aspect ratios (LLaVA-NeXT's token count per image follows
# its aspect ratio), so the batch needs padding.
PROMPTS = [
    VisionPrompt("describe the region [0.12, 0.30, 0.55, 0.71] of the image", [image(48, 64, 0)]),
    VisionPrompt(
        "what is the difference between the contents of the red boxes",
        [image(40, 40, 1), image(30, 90, 2)],
        system="answer in a few concise sentences",
    ),
    VisionPrompt("a photo", [image(100, 50, 3)]),
]


@pytest.fixture(scope="module")
def vl(tiny_models: Any) -> TransformersVisionTextGenerator:
    return ModelPool({"llava": ModelEntry(**tiny_models("llava"))}).get("llava")


def test_loads_llava_next_through_the_auto_classes(vl: TransformersVisionTextGenerator) -> None:
    assert type(vl.model).__name__ == "LlavaNextForConditionalGeneration"
    assert type(vl.processor).__name__ == "LlavaNextProcessor"
    assert vl.tokenizer.padding_side == "left"


def test_chat_puts_images_before_the_text() -> None:
    system, user = chat_of(PROMPTS[1])
    assert system == {
        "role": "system",
        "content": [{"type": "text", "text": "answer in a few concise sentences"}],
    }
    assert [part["type"] for part in user["content"]] == ["image", "image", "text"]


def test_each_image_becomes_its_own_tokens(vl: TransformersVisionTextGenerator) -> None:
    image_token = vl.model.config.image_token_index
    alone = [int((vl.inputs([p])["input_ids"] == image_token).sum()) for p in PROMPTS]
    first, second = (VisionPrompt("x", [im]) for im in PROMPTS[1].images)
    per_image = [int((vl.inputs([p])["input_ids"] == image_token).sum()) for p in (first, second)]
    assert alone[1] == sum(per_image) and per_image[0] != per_image[1]  # aspect ratio sets the count
    batch = vl.inputs(PROMPTS)
    assert (batch["input_ids"] == image_token).sum(dim=1).tolist() == alone


def test_batched_greedy_equals_one_at_a_time(vl: TransformersVisionTextGenerator) -> None:
    compared = compare_batched_with_single(vl, PROMPTS, max_new_tokens=16)
    assert compared >= 30
    if compared == 16 * len(PROMPTS):  # every step had a clear margin: whole texts agree too
        texts = vl.generate(PROMPTS, Generation(max_new_tokens=16))
        assert texts == [vl.generate([p], Generation(max_new_tokens=16))[0] for p in PROMPTS]


def test_seeded_sampling_does_not_depend_on_the_batch(vl: TransformersVisionTextGenerator) -> None:
    def sample(prompts: list[VisionPrompt], seeds: list[int]) -> list[str]:
        return vl.generate(prompts, Generation(max_new_tokens=12, temperature=1.5, seeds=seeds))

    together = sample(PROMPTS, [1, 2, 3])
    assert sample([PROMPTS[2], PROMPTS[0]], [3, 1]) == [together[2], together[0]]
    assert sample([PROMPTS[0]], [4]) != [together[0]]


def test_prompt_without_images_and_empty_batch(vl: TransformersVisionTextGenerator) -> None:
    (text,) = vl.generate([VisionPrompt("a photo of a cat", [])], Generation(max_new_tokens=4))
    assert isinstance(text, str)
    assert vl.generate([], Generation()) == []
