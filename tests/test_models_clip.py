"""The CLIP embedder on a tiny random-weight checkpoint, loaded the way a run loads it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imgdiff.models import ModelEntry, ModelPool
from imgdiff.models.clip import ClipEmbedder
from imgdiff.models.loading import ModelNotFound
from imgdiff.models.roles import cosine_matrix, cosine_rows

# Sizes that trip image processors: one pixel, 3 pixels high (readable as channels-first), tall, wide.
SIZES = [(1, 1), (3, 50), (40, 30), (64, 64), (200, 17), (17, 300)]
TEXTS = ["a photo of a cat", "a red car next to a tree", "bus", "", "an apple on a plate", "zebra"]


@pytest.fixture(scope="module")
def embedder(tiny_models) -> ClipEmbedder:
    return ModelPool({"clip": ModelEntry(**tiny_models("clip"), device="cpu")}).get("clip")


def images() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in SIZES]


def test_image_embeddings_are_unit_float32_rows(embedder):
    out = embedder.embed_images(images())
    assert out.dtype == np.float32 and out.shape == (len(SIZES), embedder.dim)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert len({row.tobytes() for row in out.round(4)}) == len(SIZES)  # each image its own embedding


def test_text_embeddings_are_unit_float32_rows(embedder):
    out = embedder.embed_texts(TEXTS)
    assert out.dtype == np.float32 and out.shape == (len(TEXTS), embedder.dim)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert len({row.tobytes() for row in out.round(4)}) == len(TEXTS)


def test_same_as_the_models_own_forward(embedder):
    """The features CLIPModel's forward returns (normalised there), for one padded batch."""
    batch = images()[2:4]
    texts = TEXTS[:2]
    pixels = embedder.image_processor(batch, return_tensors="pt", input_data_format="channels_last")
    tokens = embedder.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = embedder.model(pixel_values=pixels["pixel_values"], **tokens)
    np.testing.assert_allclose(embedder.embed_images(batch), out.image_embeds.numpy(), atol=1e-5)
    np.testing.assert_allclose(embedder.embed_texts(texts), out.text_embeds.numpy(), atol=1e-5)


def test_batched_equals_one_at_a_time(embedder, monkeypatch):
    whole_images, whole_texts = embedder.embed_images(images()), embedder.embed_texts(TEXTS)
    monkeypatch.setattr(embedder, "batch_size", 4)  # chunks of 4 and 2, with padding in each
    np.testing.assert_allclose(embedder.embed_images(images()), whole_images, atol=1e-5)
    np.testing.assert_allclose(embedder.embed_texts(TEXTS), whole_texts, atol=1e-5)
    single_images = np.concatenate([embedder.embed_images([image]) for image in images()])
    single_texts = np.concatenate([embedder.embed_texts([text]) for text in TEXTS])
    np.testing.assert_allclose(single_images, whole_images, atol=1e-5)
    np.testing.assert_allclose(single_texts, whole_texts, atol=1e-5)


def test_empty_inputs(embedder):
    assert embedder.embed_images([]).shape == (0, embedder.dim)
    assert embedder.embed_texts([]).shape == (0, embedder.dim)
    assert embedder.embed_images([]).dtype == np.float32
    assert embedder.count_text_tokens([]) == []


@pytest.mark.parametrize("shape", [(0, 10, 3), (10, 0, 3), (10, 10), (10, 10, 4)])
def test_an_image_without_pixels_or_not_rgb_is_named(embedder, shape):
    with pytest.raises(ValueError, match=r"image 1: expected an RGB array"):
        embedder.embed_images([images()[0], np.zeros(shape, np.uint8)])


def test_long_text_is_truncated_to_the_window(embedder):
    assert embedder.max_text_tokens == 75
    # "a" is one token of the tiny vocabulary: 300 of them, and the first 75 of them
    long_text, kept = "a " * 300, "a " * 75
    assert embedder.count_text_tokens([long_text, kept, "a cat"]) == [300, 75, 3]
    out = embedder.embed_texts([long_text, kept, "a " * 74])
    np.testing.assert_allclose(out[0], out[1], atol=1e-5)
    assert not np.allclose(out[0], out[2], atol=1e-4)


def test_missing_path_fails_with_one_line_naming_the_model(tmp_path):
    pool = ModelPool({"my-clip": ModelEntry(role="embedder", path=str(tmp_path / "nowhere"))})
    with pytest.raises(ModelNotFound) as error:
        pool.get("my-clip")
    message = str(error.value)
    assert "my-clip" in message and "nowhere" in message and "\n" not in message


def test_cosine_helpers_on_embeddings(embedder):
    a, b = embedder.embed_images(images()), embedder.embed_texts(TEXTS)
    rows, matrix = cosine_rows(a, b), cosine_matrix(a, b)
    assert rows.dtype == matrix.dtype == np.float32 and matrix.shape == (len(a), len(b))
    np.testing.assert_allclose(rows, (a * b).sum(axis=1), atol=1e-6)  # unit rows: cosine is the dot
    np.testing.assert_allclose(np.diag(matrix), rows, atol=1e-6)
    np.testing.assert_allclose(cosine_rows(a * 3.0, b), rows, atol=1e-6)  # scale does not matter
    zero = np.zeros_like(a[:1])
    assert cosine_rows(zero, a[:1])[0] == 0.0 and cosine_matrix(zero, b).tolist() == [[0.0] * len(b)]
    with pytest.raises(ValueError, match="cosine_rows"):
        cosine_rows(a, b[:2])


def test_squares_at_the_towers_size_skip_the_processor_with_the_same_pixels(embedder, monkeypatch):
    """Crops already at the tower's square (as `regions` brings them) are normalised directly,
    giving the processor's pixels; any other size still goes through the processor."""
    from imgdiff.models import clip

    side = embedder.image_size
    rng = np.random.default_rng(1)
    squares = [rng.integers(0, 256, (side, side, 3), dtype=np.uint8) for _ in range(3)]
    direct = embedder.pixels(squares)
    assert embedder._plain_squares is True
    expected = clip.pixel_values(embedder.image_processor, squares, "cpu", torch.float32)
    torch.testing.assert_close(direct, expected, atol=1e-5, rtol=0)
    calls = []
    monkeypatch.setattr(clip, "pixel_values", lambda *a: calls.append(a) or expected)
    embedder.pixels(squares)
    embedder.pixels(images()[2:3])
    assert len(calls) == 1  # only the odd-sized image
