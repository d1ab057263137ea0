"""The BLIP matcher on a tiny random-weight checkpoint, loaded the way a run loads it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imgdiff.models import ModelEntry, ModelPool
from imgdiff.models.blip import BlipMatcher
from imgdiff.models.loading import ModelNotFound
from test_models_clip import SIZES, images  # the image sizes that trip image processors

TEXTS = ["a photo of a cat", "a red car next to a tree", "bus", "", "an apple on a plate", "a Zebra!"]


@pytest.fixture(scope="module")
def matcher(tiny_models) -> BlipMatcher:
    return ModelPool({"blip": ModelEntry(**tiny_models("blip"), device="cpu")}).get("blip")


def test_one_probability_and_one_cosine_per_pair(matcher):
    probability, cosine = matcher.match(images(), TEXTS)
    assert probability.dtype == np.float32 and probability.shape == (len(SIZES),)
    assert cosine.dtype == np.float32 and cosine.shape == (len(SIZES),)
    assert ((probability >= 0) & (probability <= 1)).all()
    assert ((cosine >= -1 - 1e-6) & (cosine <= 1 + 1e-6)).all()
    assert len(set(probability.round(6))) == len(SIZES) and len(set(cosine.round(6))) == len(SIZES)


def test_same_as_the_models_own_forward(matcher):
    """ITM head: softmax column 1 of the forward's logits; contrastive: the diagonal of the
    forward's image x text cosine matrix."""
    batch, texts = images(), TEXTS
    pixels = matcher.image_processor(batch, return_tensors="pt", input_data_format="channels_last")
    tokens = matcher.tokenizer(texts, padding=True, return_tensors="pt", return_token_type_ids=False)
    with torch.no_grad():
        itm = matcher.model(pixel_values=pixels["pixel_values"], **tokens, use_itm_head=True).itm_score
        contrastive = matcher.model(pixel_values=pixels["pixel_values"], **tokens, use_itm_head=False)
    probability, cosine = matcher.match(batch, texts)
    np.testing.assert_allclose(probability, itm.softmax(-1)[:, 1].numpy(), atol=1e-6)
    np.testing.assert_allclose(cosine, contrastive.itm_score.diagonal().numpy(), atol=1e-6)


def test_batched_equals_one_at_a_time(matcher, monkeypatch):
    whole = matcher.match(images(), TEXTS)
    monkeypatch.setattr(matcher, "batch_size", 4)  # chunks of 4 and 2, with padding in each
    chunked = matcher.match(images(), TEXTS)
    single = [matcher.match([image], [text]) for image, text in zip(images(), TEXTS, strict=True)]
    for k in range(2):
        np.testing.assert_allclose(chunked[k], whole[k], atol=1e-6)
        np.testing.assert_allclose(np.concatenate([s[k] for s in single]), whole[k], atol=1e-6)


def test_empty_input(matcher):
    probability, cosine = matcher.match([], [])
    assert probability.shape == cosine.shape == (0,)
    assert probability.dtype == cosine.dtype == np.float32


def test_long_text_is_truncated_to_the_window(matcher):
    assert matcher.window == 64
    image = images()[3]
    # "cat" is one token: [CLS] + 62 of them + [SEP] fill the 64-token window
    long, kept, shorter = (
        matcher.match([image], [text]) for text in ("cat " * 300, "cat " * 62, "cat " * 61)
    )
    np.testing.assert_allclose(long, kept, atol=1e-6)
    assert not np.allclose(long[1], shorter[1], atol=1e-6)


def test_needs_one_text_per_image(matcher):
    with pytest.raises(ValueError, match="one text per image"):
        matcher.match(images()[:2], TEXTS[:1])


def test_missing_path_fails_with_one_line_naming_the_model(tmp_path):
    pool = ModelPool({"my-blip": ModelEntry(role="matcher", path=str(tmp_path / "nowhere"))})
    with pytest.raises(ModelNotFound) as error:
        pool.get("my-blip")
    message = str(error.value)
    assert "my-blip" in message and "nowhere" in message and "\n" not in message


def test_repeated_texts_score_as_the_models_own_forward(matcher):
    """The contrastive text features are computed once per distinct text: with one object asked
    of many crops (as `regions` asks), the pairs still score as the model's own forward."""
    batch, texts = images(), ["a cat", "a dog", "a cat", "a cat", "a dog", "a cat on a red mat"]
    pixels = matcher.image_processor(batch, return_tensors="pt", input_data_format="channels_last")
    tokens = matcher.tokenizer(texts, padding=True, return_tensors="pt", return_token_type_ids=False)
    with torch.no_grad():
        contrastive = matcher.model(pixel_values=pixels["pixel_values"], **tokens, use_itm_head=False)
    _, cosine = matcher.match(batch, texts)
    np.testing.assert_allclose(cosine, contrastive.itm_score.diagonal().numpy(), atol=1e-6)
