"""CLIP embedder (transformers `CLIPModel`): crops, whole images and captions into one space.

The pair filter compares whole images, `regions` compares the two crops of a box, `describe`
compares the two region captions (METHOD.md 3.1, 3.5, 4.2). Images go through the checkpoint's own
processor (resize the short side, centre crop), texts through its tokenizer, truncated to the
position window: the reference crashes on captions over 77 tokens (METHOD.md 7). Inputs are chunked
(`batch_size`), so thousands of crops in one call cost memory for one chunk only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import numpy as np

from imgdiff.models.compat import features_tensor, torchvision_image_processor
from imgdiff.models.loading import load_transformers

T = TypeVar("T")


class ImageTextModel:
    """What the CLIP embedder and the BLIP matcher share: a loaded transformers model with its
    processor's two halves, run on `device` in `dtype`, `batch_size` inputs at a time."""

    def __init__(self, model: Any, processor: Any, device: str, dtype: Any, batch_size: int = 128) -> None:
        self.model = model
        self.image_processor = processor.image_processor
        self.tokenizer = processor.tokenizer
        self.device = device
        self.dtype = dtype
        self.batch_size = batch_size
        # The window comes from the position table: tokenizers often say 1e30 (TESTING.md).
        self.window = int(model.config.text_config.max_position_embeddings)
        # The side of the square the vision tower sees (callers may bring crops to it in one go).
        self.image_size = int(model.config.vision_config.image_size)
        self._plain_squares: bool | None = None  # see _squares_taken_as_they_are

    def chunks(self, items: Sequence[T]) -> Iterator[Sequence[T]]:
        """`items` in slices of `batch_size`, so one call costs memory for one slice only."""
        for start in range(0, len(items), self.batch_size):
            yield items[start : start + self.batch_size]

    def pixels(self, images: Sequence[np.ndarray]) -> Any:
        images = list(images)
        side = self.image_size
        if images and all(i.shape == (side, side, 3) for i in images) and self._squares_taken_as_they_are():
            return normalized(self.image_processor, images, self.device, self.dtype)
        return pixel_values(self.image_processor, images, self.device, self.dtype)

    def _squares_taken_as_they_are(self) -> bool:
        """Whether the processor turns an image already at the tower's square into its rescaled,
        normalised pixels and nothing else, as `normalized` does: tried once on a random square.
        Callers that bring crops to the square (`regions`) then skip the processor, which costs
        more than a tiny tower's forward (about 0.1 ms an image on a CPU core)."""
        if self._plain_squares is None:
            import torch

            side = self.image_size
            probe = [np.random.default_rng(0).integers(0, 256, (side, side, 3), np.uint8)]
            try:
                expected = pixel_values(self.image_processor, probe, "cpu", torch.float32)
                fast = normalized(self.image_processor, probe, "cpu", torch.float32)
                self._plain_squares = expected.shape == fast.shape and bool(
                    (expected - fast).abs().max() < 1e-5
                )
            except (AttributeError, TypeError, ValueError):  # a processor without mean/std/rescale
                self._plain_squares = False
        return self._plain_squares

    def text_tokens(self, texts: Sequence[str]) -> Any:
        """Ids and attention mask of `texts` as one padded batch on the device, each truncated to
        the window (the text towers take no token type ids)."""
        return self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.window,
            return_tensors="pt",
            return_token_type_ids=False,
        ).to(self.device)


class ClipEmbedder(ImageTextModel):
    """The `Embedder` role (roles.py) on a loaded CLIPModel and CLIPProcessor."""

    def __init__(self, model: Any, processor: Any, device: str, dtype: Any, batch_size: int = 128) -> None:
        super().__init__(model, processor, device, dtype, batch_size)
        self.max_text_tokens = self.window - 2  # start and end tokens take two places
        self.dim = int(model.config.projection_dim)

    def embed_images(self, images: list[np.ndarray]) -> np.ndarray:
        """L2-normalised float32 (n, dim), one row per RGB uint8 image of any size."""
        import torch

        rows = [np.zeros((0, self.dim), np.float32)]
        with torch.inference_mode():
            for chunk in self.chunks(images):
                rows.append(_unit_rows(self.model.get_image_features(pixel_values=self.pixels(chunk))))
        return np.concatenate(rows)

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """L2-normalised float32 (n, dim); texts over the window are truncated to it."""
        import torch

        rows = [np.zeros((0, self.dim), np.float32)]
        with torch.inference_mode():
            for chunk in self.chunks(texts):
                tokens = self.text_tokens(chunk)
                features = self.model.get_text_features(
                    input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
                )
                rows.append(_unit_rows(features))
        return np.concatenate(rows)

    def count_text_tokens(self, texts: list[str]) -> list[int]:
        """Tokens per text without the start/end tokens, untruncated (compare with max_text_tokens)."""
        if not texts:
            return []
        # verbose=False: counting a long text is the point, not a reason to warn
        ids = self.tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
        return [len(row) for row in ids]


def pixel_values(image_processor: Any, images: list[np.ndarray], device: str, dtype: Any) -> Any:
    """The processor's pixel tensor for RGB uint8 images of any size, on `device` in `dtype`.

    A torchvision-based processor resizes on the model's device: on a GPU, resizing on the CPU
    costs more than CLIP's forward (crops of 8-200 px to 224 px: about 600 crops/s on 16 CPU cores,
    2,800 on an H200, whose ViT-B/32 tower embeds some 27,000 crops/s)."""
    extra = {"device": device} if torchvision_image_processor(image_processor) else {}
    batch = image_processor(
        rgb_arrays(images),
        return_tensors="pt",
        input_data_format="channels_last",  # a 3-pixel-high crop must not be read as channels-first
        **extra,
    )
    return batch["pixel_values"].to(device, dtype)


def normalized(image_processor: Any, images: list[np.ndarray], device: str, dtype: Any) -> Any:
    """What a CLIP-style processor makes of RGB uint8 images already at its output size: the
    pixels rescaled and normalised by its own factors, channels first, on `device` in `dtype`."""
    import torch

    pixels = torch.from_numpy(np.stack(images)).to(device).permute(0, 3, 1, 2).float()
    if image_processor.do_rescale:
        pixels = pixels * image_processor.rescale_factor
    if image_processor.do_normalize:
        mean = torch.tensor(image_processor.image_mean, device=device).view(1, -1, 1, 1)
        std = torch.tensor(image_processor.image_std, device=device).view(1, -1, 1, 1)
        pixels = (pixels - mean) / std
    return pixels.to(dtype)


def rgb_arrays(images: list[np.ndarray]) -> list[np.ndarray]:
    """The images as contiguous arrays, after checking each is (h, w, 3) with pixels: an empty
    crop is the caller's bug, better named here than as a resize error deep in a processor."""
    for index, image in enumerate(images):
        if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
            raise ValueError(f"image {index}: expected an RGB array (h, w, 3) with pixels, got {image.shape}")
    # torch warns on (and may write through) read-only arrays, such as the loader's cached images
    return [
        np.array(image, order="C") if not image.flags.writeable else np.ascontiguousarray(image)
        for image in images
    ]


def _unit_rows(features: Any) -> np.ndarray:
    """float32 numpy rows of unit length from get_*_features' result."""
    import torch

    return torch.nn.functional.normalize(features_tensor(features).float(), dim=-1).cpu().numpy()


def load(name: str, entry: Any) -> ClipEmbedder:
    """The embedder for a models: entry (a local folder, or a hub id found by `locate`)."""
    from transformers import CLIPModel, CLIPProcessor

    return ClipEmbedder(*load_transformers(name, entry, CLIPModel, CLIPProcessor))
