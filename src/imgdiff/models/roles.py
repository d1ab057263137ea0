"""What a loaded model offers the stages, per role. Every backend of a role has the same methods, so
a stage never knows whether it talks to transformers in-process or to a server.

Images cross this boundary as RGB uint8 numpy arrays of shape (h, w, 3); embeddings as float32
numpy arrays, L2-normalised, one row per input. Every method takes a whole batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


class Embedder(Protocol):
    """CLIP: images and texts into one embedding space."""

    max_text_tokens: int  # the text window without start/end tokens (75 for CLIP)

    def embed_images(self, images: list[np.ndarray]) -> np.ndarray: ...

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """Texts over the window are truncated, never an error."""
        ...

    def count_text_tokens(self, texts: list[str]) -> list[int]:
        """Tokens per text without start/end tokens (to reject captions over the window)."""
        ...


class Matcher(Protocol):
    """BLIP retrieval: does this crop show this text?"""

    def match(self, images: list[np.ndarray], texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """For pairs (images[i], texts[i]): (ITM match probability, contrastive cosine), float32 (n,)."""
        ...


@dataclass
class Segments:
    """One image's proposals: boxes (k, 4) float32 [x1, y1, x2, y2] in pixels of the input image,
    masks (k, h, w) bool at the input image's size, scores (k,) float32."""

    boxes: np.ndarray
    masks: np.ndarray
    scores: np.ndarray


class Proposals(Protocol):
    """One image's proposals without masks: boxes (k, 4) float32 [x1, y1, x2, y2] in its pixels,
    scores (k,); masks are made on request, for chosen proposals and inside a given box."""

    boxes: np.ndarray
    scores: np.ndarray

    def masks(self, indices: list[int], boxes: list[list[int]]) -> list[np.ndarray]:
        """bool (y2 - y1, x2 - x1): proposal indices[j]'s mask inside the integer box boxes[j]."""
        ...


class Segmenter(Protocol):
    """FastSAM: class-agnostic object proposals."""

    def segment(self, images: list[np.ndarray]) -> list[Segments]: ...

    def propose(self, images: list[np.ndarray]) -> list[Proposals]:
        """Boxes and scores now, masks only when asked (most boxes never need one)."""
        ...


@dataclass
class Generation:
    """Sampling for one batch; `seeds` holds one seed per prompt (per-record determinism)."""

    max_new_tokens: int = 128
    temperature: float = 0.0  # 0: greedy
    top_p: float | None = None
    seeds: list[int] = field(default_factory=list)


class TextGenerator(Protocol):
    """A chat LLM. `prompts[i]` is a list of chat messages {"role": ..., "content": str}."""

    def generate(self, prompts: list[list[dict[str, str]]], sampling: Generation) -> list[str]: ...


@dataclass
class VisionPrompt:
    """One vision-language prompt: a user text that refers to `images` (in order)."""

    text: str
    images: list[np.ndarray]
    system: str | None = None


class VisionTextGenerator(Protocol):
    """A vision-language model (LLaVA-NeXT in the paper)."""

    def generate(self, prompts: list[VisionPrompt], sampling: Generation) -> list[str]: ...


@dataclass
class Inpainting:
    """How to fill holes, for one batch: the diffusion settings (METHOD.md 5) and one seed per
    image (per-record determinism). The weight-free backend uses none of the diffusion settings."""

    prompt: str = "background, nothing"
    strength: float = 0.85
    steps: int = 4
    guidance: float = 0.0
    size: int = 512  # the pipeline works at size x size; results come back at the input's size
    seeds: list[int] = field(default_factory=list)


class Inpainter(Protocol):
    """Fills a hole (bool mask, True = remove) in each image from its surroundings."""

    def inpaint(self, images: list[np.ndarray], holes: list[np.ndarray], how: Inpainting) -> list[np.ndarray]:
        """RGB uint8 images of the inputs' sizes; outside its hole each equals its input exactly."""
        ...


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of each row of `a` with the same row of `b`: (n, d), (n, d) -> (n,) float32.

    For pairs (two crops of one box, a crop and its caption); a zero row gives 0, not NaN."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"cosine_rows needs two (n, d) arrays of one shape, got {a.shape} and {b.shape}")
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    dots = np.einsum("nd,nd->n", a, b)
    return np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0).astype(np.float32)


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of every row of `a` with every row of `b`: (n, d), (m, d) -> (n, m) float32."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"cosine_matrix needs (n, d) and (m, d) arrays, got {a.shape} and {b.shape}")

    def unit(x: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)

    return (unit(a) @ unit(b).T).astype(np.float32)
