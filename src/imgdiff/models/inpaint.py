"""`inpainter` model entries: fill a hole in an image from its surroundings (object removal, METHOD.md 5).

Two backends with one interface (`roles.Inpainter`):
- `opencv` (no weights): `cv2.inpaint` (Telea's fast marching) fills the hole from its border; the
  weight-free removal for CPU runs and tests, and the same fill the copy-paste source uses (`fill`).
- `diffusers`: a diffusers inpainting pipeline by hub id or local path. Any SDXL or SD 1.x folder
  loads as its inpainting pipeline (`AutoPipelineForInpainting`), so SDXL-Turbo, the paper's model,
  needs no inpainting-specific weights. Each image is resized to `size` x `size`, inpainted with the
  batch's prompt, strength, steps and guidance and its own seed, and resized back.

Both paste the result into the input through the hole only, so outside the hole the output is the
input, pixel for pixel: a removal pair differs exactly where the object was (the VAE's round trip
would otherwise change every pixel a little).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from imgdiff.errors import UsageError
from imgdiff.models.roles import Inpainting

if TYPE_CHECKING:
    from imgdiff.models import ModelEntry


def grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    """The bool mask dilated by `pixels` (an ellipse): masks are coarse at the object's outline."""
    hole = np.ascontiguousarray(mask, dtype=np.uint8)
    if pixels > 0:
        hole = cv2.dilate(hole, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1,) * 2))
    return hole.astype(bool)


def fill(image: np.ndarray, hole: np.ndarray, method: str = "telea") -> np.ndarray:
    """The RGB image with the bool `hole` filled from its border by `cv2.inpaint` (radius 5 px)."""
    flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
    return cv2.inpaint(np.ascontiguousarray(image), hole.astype(np.uint8), 5, flag)


def paste(image: np.ndarray, filled: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """`image` with `filled`'s pixels inside the hole only."""
    return np.where(hole[..., None], filled, image).astype(np.uint8)


@dataclass
class OpenCVInpainter:
    name: str
    method: str = "telea"

    def inpaint(self, images: list[np.ndarray], holes: list[np.ndarray], how: Inpainting) -> list[np.ndarray]:
        return [
            paste(image, fill(image, hole, self.method), hole)
            for image, hole in zip(images, holes, strict=True)
        ]


def load_opencv(name: str, entry: ModelEntry) -> OpenCVInpainter:
    return OpenCVInpainter(name)


@dataclass
class DiffusersInpainter:
    pipe: Any  # the diffusers inpainting pipeline, on its device and dtype
    name: str

    def inpaint(self, images: list[np.ndarray], holes: list[np.ndarray], how: Inpainting) -> list[np.ndarray]:
        import torch
        from PIL import Image

        if not images:
            return []
        if len(how.seeds) != len(images):
            raise ValueError(f"inpaint: {len(images)} images but {len(how.seeds)} seeds")
        side = how.size
        pictures = [Image.fromarray(image).resize((side, side), Image.Resampling.BICUBIC) for image in images]
        masks = [
            Image.fromarray(hole.astype(np.uint8) * 255).resize((side, side), Image.Resampling.NEAREST)
            for hole in holes
        ]
        # CPU generators: the same noise on any device, so a seed means the same removal everywhere
        generators = [torch.Generator(device="cpu").manual_seed(seed) for seed in how.seeds]
        out = self.pipe(
            prompt=[how.prompt] * len(images),
            image=pictures,
            mask_image=masks,
            strength=how.strength,
            num_inference_steps=how.steps,
            guidance_scale=how.guidance,
            height=side,
            width=side,
            generator=generators,
            output_type="np",
        ).images
        results = []
        for image, hole, made in zip(images, holes, out, strict=True):
            made = np.clip(np.nan_to_num(made) * 255.0 + 0.5, 0, 255).astype(np.uint8)
            height, width = image.shape[:2]
            made = cv2.resize(made, (width, height), interpolation=cv2.INTER_CUBIC)
            results.append(paste(image, made, hole))
        return results


def load_diffusers(name: str, entry: ModelEntry) -> DiffusersInpainter:
    """Load an SDXL / SD 1.x folder (text-to-image or inpainting) as its inpainting pipeline."""
    from diffusers import AutoPipelineForInpainting

    from imgdiff.models.diffusion import pipeline_folder

    path, device, options = pipeline_folder(name, entry)
    try:
        pipe = AutoPipelineForInpainting.from_pretrained(str(path), **options)
    except ValueError as exc:  # a pipeline family without an inpainting counterpart
        raise UsageError(f"model '{name}': no inpainting pipeline for {path}: {exc}") from None
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return DiffusersInpainter(pipe=pipe, name=name)
