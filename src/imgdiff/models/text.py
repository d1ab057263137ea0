"""The `text_generator` role on transformers: a chat LLM run in-process (Qwen2-Instruct, Vicuna, ...).

The caption-edit stage asks it to rewrite captions (METHOD.md section 1). Prompts are chats; a batch
is rendered with the tokenizer's chat template and padded on the LEFT with an attention mask, so each
prompt's tokens equal what it would get alone (the reference pads without a mask, which corrupts
shorter prompts). Decoding is greedy at temperature 0; otherwise each row samples from its own
generator seeded by its record's seed (`SeededSampler`), so a record's text does not depend on which
batch it lands in. Generation stops at EOS or `max_new_tokens`; only the new tokens are decoded.

This module also holds what `vision_text.py` shares: batching and decoding (`ChatGenerator`,
`generate_new_tokens`). Both load through `loading.load_transformers`; the tiny chat LM is built in
`imgdiff.tiny.text`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from transformers import LogitsProcessor

from imgdiff.models.loading import load_transformers
from imgdiff.models.roles import Generation

if TYPE_CHECKING:
    from imgdiff.models import ModelEntry


def load(name: str, entry: ModelEntry) -> TransformersTextGenerator:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tokenizer, _, _ = load_transformers(name, entry, AutoModelForCausalLM, AutoTokenizer)
    return TransformersTextGenerator(model, tokenizer)


class ChatGenerator:
    """What the text and vision-text generators share: a batch of prompts becomes chat-templated,
    left-padded model inputs (`inputs`, per subclass), then the new tokens' text."""

    model: Any
    tokenizer: Any  # prepared by `prepare_tokenizer`

    def generate(self, prompts: list[Any], sampling: Generation) -> list[str]:
        if not prompts:
            return []
        new_tokens = generate_new_tokens(self.model, self.inputs(prompts), sampling, self.tokenizer)
        return [text.strip() for text in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]

    def inputs(self, prompts: list[Any]) -> Any:
        """The model inputs of a batch (each subclass renders its own kind of prompt)."""
        raise NotImplementedError

    def chat_inputs(self, encoder: Any, chats: list[Any], **extra: Any) -> Any:
        """`chats` rendered with the chat template of `encoder` (the tokenizer, or a processor that
        wraps it) and encoded as one left-padded batch with its attention mask; `extra` goes to the
        encoder (a processor's images)."""
        texts = [
            encoder.apply_chat_template(chat, add_generation_prompt=True, tokenize=False) for chat in chats
        ]
        return encoder(
            text=texts,
            padding=True,
            return_tensors="pt",
            add_special_tokens=needs_special_tokens(self.tokenizer, texts[0]),
            **extra,
        )


class TransformersTextGenerator(ChatGenerator):
    """`roles.TextGenerator` on a transformers causal LM and its tokenizer (which must have a chat
    template)."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model = model
        self.tokenizer = prepare_tokenizer(tokenizer)

    def inputs(self, prompts: list[list[dict[str, str]]]) -> Any:
        """The model inputs of a batch: chat-templated, left-padded, with the attention mask."""
        return self.chat_inputs(self.tokenizer, prompts)


def prepare_tokenizer(tokenizer: Any) -> Any:
    """Left padding (a batch's prompts all end where generation starts) and a pad token (Llama-style
    tokenizers have none; padded positions are masked, so which token pads does not matter)."""
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def needs_special_tokens(tokenizer: Any, text: str) -> bool:
    """Whether tokenizing a rendered chat must add the tokenizer's special tokens: not when the
    template already wrote the BOS token (Llama-3 style), or it would appear twice."""
    bos = tokenizer.bos_token
    return not (bos and text.startswith(bos))


def generate_new_tokens(
    model: Any, inputs: Any, sampling: Generation, tokenizer: Any, **options: Any
) -> torch.Tensor:
    """Run `generate` on a left-padded batch (with its attention mask) and return only the new
    tokens, (batch, <= max_new_tokens). Sampling follows `sampling` alone: the model's own
    generation defaults (repetition penalty, top-k) are switched off so both backends of a role
    do the same thing. `options` are further GenerationConfig fields (benchmarks force output
    lengths with `min_new_tokens` and try `cache_implementation="static"`)."""
    from transformers import GenerationConfig, LogitsProcessorList

    n = inputs["input_ids"].shape[0]
    eos = model.generation_config.eos_token_id
    config = GenerationConfig(
        max_new_tokens=sampling.max_new_tokens,
        do_sample=False,  # sampling, when asked for, happens per row in SeededSampler
        num_beams=1,
        repetition_penalty=1.0,
        no_repeat_ngram_size=0,
        eos_token_id=eos if eos is not None else tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **options,
    )
    processors = LogitsProcessorList()
    if sampling.temperature > 0:
        if len(sampling.seeds) != n:
            raise ValueError(f"sampling needs one seed per prompt: {len(sampling.seeds)} seeds, {n} prompts")
        processors.append(SeededSampler(sampling.seeds, sampling.temperature, sampling.top_p))
    # Floating inputs (pixel values) take the model's dtype; the caller's batch is left as it was.
    inputs = {
        key: value.to(model.device, model.dtype if value.is_floating_point() else None)
        for key, value in inputs.items()
    }
    with torch.inference_mode():
        out = model.generate(**inputs, generation_config=config, logits_processor=processors)
    return out[:, inputs["input_ids"].shape[1] :]


class SeededSampler(LogitsProcessor):
    """Samples each row's next token from that row's own `torch.Generator` (seeded with its
    record's seed), after temperature and top-p, and returns scores that are -inf except at the
    chosen token, so that greedy decoding picks it. One global generator (what `do_sample` uses)
    would make a record's text depend on its batch-mates."""

    def __init__(self, seeds: list[int], temperature: float, top_p: float | None) -> None:
        self.seeds = seeds
        self.temperature = temperature
        self.top_p = top_p
        self.generators: list[torch.Generator] | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.generators is None:  # on the first step, where the scores' device is known
            self.generators = [torch.Generator(scores.device).manual_seed(s) for s in self.seeds]
        probs = torch.softmax(scores.float() / self.temperature, dim=-1)
        if self.top_p is not None and self.top_p < 1.0:
            probs = _top_p(probs, self.top_p)
        chosen = torch.cat(
            [torch.multinomial(p, 1, generator=g) for p, g in zip(probs, self.generators, strict=True)]
        )
        out = torch.full_like(scores, float("-inf"))
        return out.scatter_(1, chosen[:, None], 0.0)


def _top_p(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose probability reaches top_p (at least one)."""
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    before = sorted_probs.cumsum(dim=-1) - sorted_probs  # mass of the more likely tokens
    sorted_probs[before >= top_p] = 0.0
    return torch.zeros_like(probs).scatter_(-1, order, sorted_probs)
