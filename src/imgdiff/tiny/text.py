"""The tiny chat LM (`imgdiff models make-tiny`'s `llm`): a random Qwen2 with a ChatML template, and
the LM size the tiny LLaVA-NeXT shares."""

from __future__ import annotations

from pathlib import Path

from imgdiff.tiny.seeded import save_random
from imgdiff.tiny.vocab import tiny_tokenizer

# ChatML, as Qwen2-Instruct's template renders it.
CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# The size of the tiny LMs: this module's Qwen2 and the Llama inside the tiny LLaVA-NeXT (llava.py).
TINY_LM = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "max_position_embeddings": 4096,
}
# Larger than the default 0.02: clear top-1 margins, so greedy decoding is stable.
TINY_INITIALIZER_RANGE = 0.2


def make_tiny(out: Path) -> Path:
    """A tiny random Qwen2 chat LM with a ChatML template and Qwen2's tokenizer class, saved as a
    transformers folder."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = tiny_tokenizer(
        ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        CHATML_TEMPLATE,
        eos="<|im_end|>",
        pad="<|endoftext|>",
    )
    config = Qwen2Config(
        **TINY_LM,
        vocab_size=len(tokenizer),
        num_key_value_heads=2,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
        initializer_range=TINY_INITIALIZER_RANGE,
    )
    return save_random(Qwen2ForCausalLM, config, tokenizer, out)
