"""CLIP embedder (transformers `CLIPModel`): crops, whole images and captions into one space.

The pair filter compares whole images, `regions` compares the two crops of a box, `describe`
compares the two region captions (METHOD.md 3.1, 3.5, 4.2). Images go through the checkpoint's own
processor (resize the short side, centre crop), texts through its tokenizer, truncated to the
position window: the reference crashes on captions over 77 tokens (METHOD.md 7). Inputs are chunked
(`batch_size`), so thousands of crops in one call cost memory for one chunk only.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

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

    def chunks(self, items: Sequence[T]) -> Iterator[Sequence[T]]:
        """`items` in slices of `batch_size`, so one call costs memory for one slice only."""
        for start in range(0, len(items), self.batch_size):
            yield items[start : start + self.batch_size]

    def pixels(self, images: Sequence[np.ndarray]) -> Any:
        return pixel_values(self.image_processor, list(images), self.device, self.dtype)

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
    extra = {"device": device} if _resizes_on_device(image_processor) else {}
    batch = image_processor(
        rgb_arrays(images),
        return_tensors="pt",
        input_data_format="channels_last",  # a 3-pixel-high crop must not be read as channels-first
        **extra,
    )
    return batch["pixel_values"].to(device, dtype)


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


def _resizes_on_device(image_processor: Any) -> bool:
    """Whether the image processor is torchvision-based (takes `device=`): transformers 5's
    default, 4.x's "fast" processors; the PIL/numpy ones are not."""
    try:  # transformers 5
        from transformers.image_processing_backends import TorchvisionBackend as Torchvision
    except ImportError:
        try:  # transformers 4.x
            from transformers.image_processing_utils_fast import BaseImageProcessorFast as Torchvision
        except ImportError:
            return False
    return isinstance(image_processor, Torchvision)


def _unit_rows(features: Any) -> np.ndarray:
    """float32 numpy rows of unit length from get_*_features' result: a tensor in transformers
    4.x, an output object holding it as `pooler_output` in 5.x."""
    import torch

    if not isinstance(features, torch.Tensor):
        features = features.pooler_output
    return torch.nn.functional.normalize(features.float(), dim=-1).cpu().numpy()


def load(name: str, entry: Any) -> ClipEmbedder:
    """The embedder for a models: entry (a local folder, or a hub id found by `locate`)."""
    from transformers import CLIPModel, CLIPProcessor

    return ClipEmbedder(*load_transformers(name, entry, CLIPModel, CLIPProcessor))


# -- tiny checkpoint for tests and smoke runs --------------------------------------------------------

# The size of each transformer tower of the tiny CLIP and BLIP (text and vision alike).
TINY_TOWER = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4}
# The tiny vision tower: CLIP's here, BLIP's, and the one inside vision_text's LLaVA-NeXT.
TINY_VISION = {**TINY_TOWER, "image_size": 32, "patch_size": 8}


def make_tiny(out: Path) -> Path:
    """A random-weight CLIP (32 px images, 77-token window, tiny BPE vocabulary) saved like a hub
    checkpoint: model and processor in `out`."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    from imgdiff.models.tiny import clip_tokenizer

    with tempfile.TemporaryDirectory() as work:
        tokenizer = clip_tokenizer(Path(work))
    config = CLIPConfig(
        text_config={
            **TINY_TOWER,
            "vocab_size": len(tokenizer),
            "max_position_embeddings": 77,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config=dict(TINY_VISION),
        projection_dim=16,
    )
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)
    return save_random(CLIPModel, config, processor, out)


def save_random(model_class: Any, config: Any, preprocessor: Any, out: Path) -> Path:
    """A `model_class` of `config` with deterministic random weights (the caller's random state
    untouched), saved with its processor or tokenizer in `out` like a hub checkpoint (the tiny
    CLIP, BLIP and text LM)."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = model_class(config).eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    preprocessor.save_pretrained(out)
    return out
