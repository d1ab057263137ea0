"""`editor` model entries (backend `diffusers`): instruction image editors through diffusers' stock
pipelines, by hub id or local path (tiny random ones are built in `imgdiff.tiny.editing`).

| family | pipeline class | published model |
|---|---|---|
| `instruct-pix2pix` | StableDiffusionInstructPix2PixPipeline | timbrooks/instruct-pix2pix (SD 1.5) |
| `flux-kontext` | FluxKontextPipeline | black-forest-labs/FLUX.1-Kontext-dev |
| `qwen-image-edit` | QwenImageEditPipeline | Qwen/Qwen-Image-Edit |

`load` returns an `EditingModel`; its `edit` takes a batch of `EditRequest`s and one `EditSampling`
and returns edited images at the requested working size. Only the pipelines' public `__call__`
arguments are used (prompt, image, steps, guidance, size, generator), so a diffusers upgrade that
keeps its documented API keeps working. Each image gets its own CPU generator seeded by its record,
so an image does not depend on the others in its call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from imgdiff.errors import UsageError

if TYPE_CHECKING:
    from imgdiff.models import ModelEntry

FAMILIES = {
    "StableDiffusionInstructPix2PixPipeline": "instruct-pix2pix",
    "FluxKontextPipeline": "flux-kontext",
    "QwenImageEditPipeline": "qwen-image-edit",
}


@dataclass(frozen=True)
class EditRequest:
    """One edit: the source image (RGB uint8, already at the working size) and the instruction."""

    image: np.ndarray
    instruction: str
    seed: int


@dataclass(frozen=True)
class EditSampling:
    """How to sample one call. `image_guidance` is InstructPix2Pix's image guidance; `guidance` is
    the text guidance (InstructPix2Pix), the distilled guidance (FLUX.1 Kontext) or the true
    classifier-free guidance (Qwen-Image-Edit, with `negative_prompt`)."""

    steps: int
    guidance: float
    image_guidance: float | None = None
    negative_prompt: str | None = None


@dataclass
class EditingModel:
    """A loaded instruction editor and its family."""

    pipe: Any
    family: str  # a value of FAMILIES
    name: str  # the recipe's model entry name

    @property
    def multiple_of(self) -> int:
        """Working sizes must be multiples of this: the VAE's downscale, times the 2x2 latent
        patches of the transformer families (8 for InstructPix2Pix, 16 for the published FLUX.1
        Kontext and Qwen-Image-Edit)."""
        scale = int(self.pipe.vae_scale_factor)
        return scale if self.family == "instruct-pix2pix" else 2 * scale

    def edit(self, requests: list[EditRequest], sampling: EditSampling) -> list[np.ndarray]:
        """Edited images (RGB uint8) at each request's size, in order; one pipeline call per size
        present (a call needs one size)."""
        out: list[np.ndarray | None] = [None] * len(requests)
        by_size: dict[tuple[int, ...], list[int]] = {}
        for i, request in enumerate(requests):
            by_size.setdefault(request.image.shape[:2], []).append(i)
        for indices in by_size.values():
            images = self._call([requests[i] for i in indices], sampling)
            for i, image in zip(indices, images, strict=True):
                out[i] = image
        return [image for image in out if image is not None]

    def _call(self, requests: list[EditRequest], sampling: EditSampling) -> list[np.ndarray]:
        import torch
        from PIL import Image

        height, width = requests[0].image.shape[:2]
        multiple = self.multiple_of
        if height % multiple or width % multiple:
            raise ValueError(
                f"{self.family} needs sizes that are multiples of {multiple}, got {width}x{height}"
            )
        generators = [torch.Generator("cpu").manual_seed(r.seed) for r in requests]
        common: dict[str, Any] = {
            "prompt": [r.instruction for r in requests],
            "image": [Image.fromarray(r.image) for r in requests],
            "num_inference_steps": sampling.steps,
            "generator": generators,
            "output_type": "np",
        }
        if self.family == "instruct-pix2pix":
            # The pipeline edits at the input image's size.
            extra = {"guidance_scale": sampling.guidance, "image_guidance_scale": sampling.image_guidance}
        elif self.family == "flux-kontext":
            # Kontext scales the output to `max_area` at the requested aspect ratio: asking for the
            # working size's own area keeps it.
            extra = {
                "guidance_scale": sampling.guidance,
                "height": height,
                "width": width,
                "max_area": height * width,
            }
        else:
            extra = {"true_cfg_scale": sampling.guidance, "height": height, "width": width}
            if sampling.negative_prompt is not None:
                extra["negative_prompt"] = [sampling.negative_prompt] * len(requests)
        result = self.pipe(**common, **extra)
        images = np.asarray(result.images)
        if images.shape[1:3] != (height, width):
            raise ValueError(
                f"{self.family} returned {images.shape[2]}x{images.shape[1]}, asked {width}x{height}"
            )
        # Non-finite pixels stay visible to the caller: NaN becomes 0 here only after it is counted.
        return [_to_uint8(image) for image in images]


def _to_uint8(image: np.ndarray) -> np.ndarray:
    """A float image in [0, 1] as RGB uint8; NaN or inf raise (the caller rejects the record)."""
    if not np.isfinite(image).all():
        raise FloatingPointError("NaN or inf in the edited image")
    return (np.clip(image, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def load(name: str, entry: ModelEntry) -> EditingModel:
    """Load a diffusers instruction-editing pipeline folder."""
    from diffusers import DiffusionPipeline

    from imgdiff.models.diffusion import pipeline_folder

    path, device, options = pipeline_folder(name, entry)
    pipe = DiffusionPipeline.from_pretrained(str(path), **options)
    family = FAMILIES.get(type(pipe).__name__)
    if family is None:
        raise UsageError(
            f"model '{name}': {type(pipe).__name__} is not an instruction editor; "
            f"use one of {', '.join(sorted(FAMILIES))}"
        )
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return EditingModel(pipe=pipe, family=family, name=name)
