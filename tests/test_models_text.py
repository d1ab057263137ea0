"""The `text_generator` role on transformers, on the tiny Qwen2 chat LM that `make-tiny` builds:
batched greedy generation equals one prompt at a time, seeded sampling does not depend on the
batch, generation stops at EOS or the token limit and returns only the new text."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from imgdiff.models import ModelEntry, ModelPool
from imgdiff.models.loading import ModelNotFound
from imgdiff.models.roles import Generation
from imgdiff.models.text import TransformersTextGenerator, generate_new_tokens, load

CHATS = [
    [{"role": "user", "content": "a photo of a cat"}],
    [
        {"role": "system", "content": "answer with one sentence only"},
        {
            "role": "user",
            "content": "replace one object in this caption with another: a man sitting on a bench",
        },
    ],
    [{"role": "user", "content": "dog"}],
    [{"role": "user", "content": "what is the difference between the two images shown side by side"}],
]
MARGIN = 1e-3  # below this top-2 logit margin, float noise of padding may flip the greedy choice


@pytest.fixture(scope="module")
def llm(tiny_models: Any) -> TransformersTextGenerator:
    return ModelPool({"llm": ModelEntry(**tiny_models("llm"))}).get("llm")


def single_greedy(generator: Any, inputs: Any, max_new_tokens: int) -> tuple[list[int], list[float]]:
    """One prompt alone (no padding): its greedy tokens and each step's top-2 logit margin."""
    out = generator.model.generate(
        **inputs,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        output_logits=True,
        return_dict_in_generate=True,
        pad_token_id=generator.tokenizer.pad_token_id,
    )
    tokens = out.sequences[0, inputs["input_ids"].shape[1] :].tolist()
    top2 = torch.stack(out.logits, dim=1)[0].float().topk(2, dim=-1).values
    return tokens, (top2[:, 0] - top2[:, 1]).tolist()


def compare_batched_with_single(generator: Any, prompts: list[Any], max_new_tokens: int) -> int:
    """Assert that each prompt's batched greedy tokens equal its one-at-a-time tokens up to the first
    step whose margin is <= MARGIN; return how many steps were compared."""
    batch = generator.inputs(prompts)
    assert (batch["attention_mask"] == 0).any(), "the batch must need padding"
    assert (batch["attention_mask"][:, -1] == 1).all(), "padding must be on the left"
    batched = generate_new_tokens(
        generator.model, batch, Generation(max_new_tokens=max_new_tokens), generator.tokenizer
    )
    compared = 0
    for row, prompt in enumerate(prompts):
        tokens, margins = single_greedy(generator, generator.inputs([prompt]), max_new_tokens)
        stable = next((step for step, margin in enumerate(margins) if margin <= MARGIN), len(tokens))
        assert batched[row, :stable].tolist() == tokens[:stable], f"prompt {row}"
        assert stable >= 4, f"prompt {row}: only {stable} steps above the margin"
        compared += stable
    return compared


def test_loads_through_the_pool_with_qwen2_tokenizer(llm: TransformersTextGenerator) -> None:
    assert type(llm.model).__name__ == "Qwen2ForCausalLM"
    # transformers 5 has one tokenizer class per model; 4.x's AutoTokenizer picks the "Fast" one
    assert type(llm.tokenizer).__name__ in {"Qwen2Tokenizer", "Qwen2TokenizerFast"}
    assert llm.tokenizer.padding_side == "left" and llm.tokenizer.pad_token is not None
    rendered = llm.tokenizer.apply_chat_template(CHATS[0], add_generation_prompt=True, tokenize=False)
    assert rendered.endswith("<|im_start|>assistant\n")
    # The tiny vocabulary knows the prompt words whole: one token per word after a space.
    assert len(llm.tokenizer(" a photo of a cat").input_ids) == 5


def test_batched_greedy_equals_one_at_a_time(llm: TransformersTextGenerator) -> None:
    compared = compare_batched_with_single(llm, CHATS, max_new_tokens=20)
    assert compared >= 60
    texts = llm.generate(CHATS, Generation(max_new_tokens=20))
    if compared == 20 * len(CHATS):  # every step had a clear margin: whole texts agree too
        assert texts == [llm.generate([chat], Generation(max_new_tokens=20))[0] for chat in CHATS]


def test_seeded_sampling_does_not_depend_on_the_batch(llm: TransformersTextGenerator) -> None:
    def sample(chats: list[Any], seeds: list[int]) -> list[str]:
        return llm.generate(chats, Generation(max_new_tokens=16, temperature=1.5, top_p=0.9, seeds=seeds))

    together = sample(CHATS, [1, 2, 3, 4])
    assert sample([CHATS[2], CHATS[0]], [3, 1]) == [together[2], together[0]]
    assert sample([CHATS[0]], [99]) != [together[0]]  # another seed, another text
    assert len(set(sample([CHATS[0]] * 3, [7, 8, 9]))) == 3  # same prompt, own seeds: own texts


def test_sampling_without_seeds_is_an_error(llm: TransformersTextGenerator) -> None:
    with pytest.raises(ValueError, match="one seed per prompt"):
        llm.generate(CHATS[:2], Generation(temperature=1.0, seeds=[1]))


def test_top_p_keeps_only_the_nucleus() -> None:
    from imgdiff.models.text import _top_p

    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05], [0.05, 0.9, 0.03, 0.02]])
    kept = _top_p(probs, 0.75)
    torch.testing.assert_close(kept, torch.tensor([[0.5, 0.3, 0.0, 0.0], [0.0, 0.9, 0.0, 0.0]]))


def test_stops_at_eos_and_returns_only_new_text(tiny_models: Any) -> None:
    generator = load("llm", ModelEntry(**tiny_models("llm")))  # its own copy: the test changes the EOS
    tokens, _ = single_greedy(generator, generator.inputs([CHATS[1]]), 12)
    stop = next(k for k in range(2, len(tokens)) if tokens[k] not in tokens[:k])
    generator.model.generation_config.eos_token_id = tokens[stop]  # a token greedy decoding reaches
    new = generate_new_tokens(
        generator.model, generator.inputs([CHATS[1]]), Generation(12), generator.tokenizer
    )
    assert new[0].tolist() == tokens[: stop + 1]  # up to and including the EOS, then nothing
    (text,) = generator.generate([CHATS[1]], Generation(max_new_tokens=12))
    assert text == generator.tokenizer.decode(tokens[: stop + 1], skip_special_tokens=True).strip()
    # In a batch, the row that stopped is padded while the other goes on; the padding is not text.
    assert generator.generate([CHATS[1], CHATS[3]], Generation(max_new_tokens=12))[0] == text
    assert not text.startswith(("<|im_start|>", "system", "assistant"))  # none of the prompt


def test_stops_at_the_token_limit(llm: TransformersTextGenerator) -> None:
    batch = llm.inputs(CHATS)
    new = generate_new_tokens(llm.model, batch, Generation(max_new_tokens=3), llm.tokenizer)
    assert new.shape == (len(CHATS), 3)
    assert llm.generate([], Generation()) == []


def test_missing_folder_names_the_model(tmp_path: Any) -> None:
    entry = ModelEntry(role="text_generator", path=str(tmp_path / "nowhere"))
    with pytest.raises(ModelNotFound, match="model 'llm': path .*nowhere not found"):
        load("llm", entry)
