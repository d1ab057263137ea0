"""The vocabularies of the tiny checkpoints, built in code (no download): a CLIP BPE, a BERT
WordPiece and a byte-level BPE (Qwen2's tokenizer class), each knowing a few words whole so that the
prompts tests and smoke runs send tokenize into words, and anything else still round-trips through
characters or bytes."""

from __future__ import annotations

import json
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

# Words the tiny CLIP BPE vocabulary knows whole (everything else splits into bytes, which is
# useful: tests see multi-token words).
TINY_WORDS = (
    "a an the of on in with and is are at to photo picture image red blue green white black small big "
    "cat dog car bus apple banana table chair man woman person bench tree street room plate cup sitting "
    "standing next front top"
)


@lru_cache(maxsize=1)
def _byte_symbols() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character table."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    keep += list(range(ord("®"), ord("ÿ") + 1))
    codes = keep[:]
    extra = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(keep, [chr(c) for c in codes], strict=True))


def write_clip_bpe(out: Path, words: str = TINY_WORDS) -> tuple[Path, Path]:
    """A small CLIP BPE vocabulary as vocab.json + merges.txt: every byte, plus each of the
    space-separated `words` whole. Special tokens come last, as in OpenAI's vocabulary."""
    out.mkdir(parents=True, exist_ok=True)
    base = list(_byte_symbols().values())
    vocab = base + [c + "</w>" for c in base]
    merges: list[str] = []
    for word in dict.fromkeys(words.split()):
        symbols = list(word[:-1]) + [word[-1] + "</w>"]
        while len(symbols) > 1:
            merged = symbols[0] + symbols[1]
            rule = f"{symbols[0]} {symbols[1]}"
            if rule not in merges:
                merges.append(rule)
                vocab.append(merged)
            symbols = [merged, *symbols[2:]]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    ids = {token: i for i, token in enumerate(dict.fromkeys(vocab))}
    vocab_file, merges_file = out / "vocab.json", out / "merges.txt"
    vocab_file.write_text(json.dumps(ids))
    merges_file.write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return vocab_file, merges_file


def clip_tokenizer(work: Path, pad_token: str = "<|endoftext|>") -> Any:
    """A transformers CLIPTokenizer on the tiny vocabulary, with CLIP's 77-token window."""
    from transformers import CLIPTokenizer

    vocab_file, merges_file = write_clip_bpe(work)
    return CLIPTokenizer(str(vocab_file), str(merges_file), model_max_length=77, pad_token=pad_token)


def write_wordpiece_vocab(out: Path) -> Path:
    """A small BERT WordPiece vocab.txt: special tokens, the tiny words whole, then single
    characters (word-initial and `##` continuations) so that any lower-case text tokenizes."""
    characters = "abcdefghijklmnopqrstuvwxyz0123456789"
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *TINY_WORDS.split()]
    tokens += [*characters, *(f"##{c}" for c in characters), *".,;:!?'\"-()"]
    out.mkdir(parents=True, exist_ok=True)
    vocab = out / "vocab.txt"
    vocab.write_text("\n".join(dict.fromkeys(tokens)) + "\n")
    return vocab


# Words of the tiny tokenizers' vocabulary: the prompts tests and smoke runs send, so that they
# tokenize into words rather than <unk>.
TINY_VOCAB = (
    "a an the of on in with and is are at to by from it this that there what which one two few some "
    "photo picture image images region object objects caption sentence answer only replace another "
    "describe difference differences between contents red box boxes left right black bar shown side "
    "separated concise sentences blue green white black small big cat dog car bus apple banana table "
    "chair man woman person bench tree street room plate cup sitting standing next front top hint "
    "hints system user assistant"
)


def tiny_tokenizer(specials: list[str], chat_template: str, eos: str, pad: str | None) -> Any:
    """A byte-level BPE tokenizer (Qwen2's class, built in code): every byte is a token, and each word of
    `TINY_VOCAB` after a space (" photo") merges into one token, so prompts made of those words
    tokenize as words and anything else still round-trips through bytes. Built from vocab.json and
    merges.txt files, the one constructor transformers 4.x and 5.x share."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import Qwen2Tokenizer

    tokens, merges = sorted(ByteLevel.alphabet()), []
    for word in dict.fromkeys(TINY_VOCAB.split()):
        merged = "\u0120"  # the byte-level symbol of a space
        for char in word:  # left to right, so each word has exactly one merge path
            merges.append(f"{merged} {char}")
            merged += char
            tokens.append(merged)
    vocab = {token: i for i, token in enumerate(dict.fromkeys([*specials, *tokens]))}
    with tempfile.TemporaryDirectory() as work:
        vocab_file, merges_file = Path(work) / "vocab.json", Path(work) / "merges.txt"
        vocab_file.write_text(json.dumps(vocab))
        merges_file.write_text("#version: 0.2\n" + "\n".join(dict.fromkeys(merges)) + "\n")
        tokenizer = Qwen2Tokenizer(
            str(vocab_file),
            str(merges_file),
            unk_token=None,
            eos_token=eos,
            pad_token=pad,
            model_max_length=4096,
        )
    tokenizer.add_special_tokens({"additional_special_tokens": [s for s in specials if s not in (eos, pad)]})
    tokenizer.chat_template = chat_template
    return tokenizer
