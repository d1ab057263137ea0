"""`diffusion` model entries (backend `diffusers`): SDXL, SDXL-Turbo and SD 1.5 pipelines by hub id or
local path (the tiny random ones and full-size SDXL's layout are built in `imgdiff.tiny.diffusion`).

`load` returns a `DiffusionModel`: the stock diffusers pipeline on its device and dtype with the progress
bar off, and its family ("sdxl" or "sd15"), which Prompt-to-Prompt (`imgdiff.p2p`) and the `generate`
stage need. The pipeline is never subclassed: editing happens through its public seams (attention
processors, `latents=`, `callback_on_step_end`). SDXL's VAE overflows in float16; its config sets
`force_upcast`, and the pipeline itself decodes in float32 then, so nothing here touches the VAE.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imgdiff.errors import UsageError
from imgdiff.models.compat import diffusers_dtype_keyword
from imgdiff.models.loading import device_of, dtype_of, locate

if TYPE_CHECKING:
    from imgdiff.models import ModelEntry

FAMILIES = {"StableDiffusionXLPipeline": "sdxl", "StableDiffusionPipeline": "sd15"}


@dataclass
class DiffusionModel:
    """A loaded text-to-image pipeline and what kind it is."""

    pipe: Any  # the diffusers pipeline, on its device and dtype
    family: str  # "sdxl" | "sd15"
    name: str  # the recipe's model entry name


def pipeline_folder(name: str, entry: ModelEntry) -> tuple[Path, str, dict[str, Any]]:
    """An entry's diffusers pipeline folder, its device and the `from_pretrained` options (dtype,
    and the fp16 variant when half weights are asked for and there)."""
    import torch

    path = locate(name, entry)
    if not (path / "model_index.json").is_file():
        raise UsageError(f"model '{name}': {path} is not a diffusers pipeline folder (no model_index.json)")
    device = device_of(entry)
    dtype = dtype_of(entry, device)
    options = diffusers_dtype_keyword(dtype)
    # Hub repositories often hold both full and half weights; take the half ones when asked for half.
    if dtype == torch.float16 and any((path / "unet").glob("*.fp16.safetensors")):
        options["variant"] = "fp16"
    return path, device, options


def load(name: str, entry: ModelEntry) -> DiffusionModel:
    """Load a diffusers text-to-image pipeline folder (SDXL, SDXL-Turbo, SD 1.x)."""
    from diffusers import DiffusionPipeline

    path, device, options = pipeline_folder(name, entry)
    pipe = DiffusionPipeline.from_pretrained(str(path), **options)
    family = FAMILIES.get(type(pipe).__name__)
    if family is None:
        raise UsageError(
            f"model '{name}': {type(pipe).__name__} is not supported for generation; "
            f"use an SDXL or SD 1.x text-to-image pipeline"
        )
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return DiffusionModel(pipe=pipe, family=family, name=name)
