"""The `diffusion` loader and the tiny SD 1.5 / SDXL builders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from imgdiff.errors import UsageError
from imgdiff.models import ModelEntry, ModelPool
from imgdiff.models.diffusion import DiffusionModel
from imgdiff.p2p import P2PConfig, PairRequest, generate_pairs
from imgdiff.tiny.diffusion import make_tiny_sd15
from p2p_reference import one_torch_thread  # noqa: F401


@pytest.mark.parametrize(
    ("name", "family", "pipeline"),
    [("sd15", "sd15", "StableDiffusionPipeline"), ("sdxl", "sdxl", "StableDiffusionXLPipeline")],
)
def test_tiny_checkpoints_load_through_the_pool(
    tiny_models: Any, name: str, family: str, pipeline: str
) -> None:
    pool = ModelPool({"gen": ModelEntry(**tiny_models(name))})
    model = pool.get("gen")
    assert isinstance(model, DiffusionModel) and pool.get("gen") is model and pool.loads == {"gen": 1}
    assert (model.family, model.name, type(model.pipe).__name__) == (family, "gen", pipeline)
    assert model.pipe.unet.device.type == "cpu" and model.pipe.unet.dtype == torch.float32
    assert model.pipe._progress_bar_config == {"disable": True}
    # the layout Prompt-to-Prompt's per-layer rules need: self + cross attention at two resolutions
    (pair,) = generate_pairs(
        model, [PairRequest("a cat", "a dog", 0, "cat", "dog")], P2PConfig(height=64, width=64, steps=2)
    )
    assert pair.a.shape == (64, 64, 3) and pair.prior.shape == (2, 8, 8) and pair.finite


def test_a_missing_path_fails_with_one_line(tmp_path: Path) -> None:
    pool = ModelPool(
        {"sdxl": ModelEntry(role="diffusion", backend="diffusers", path=str(tmp_path / "nowhere"))}
    )
    with pytest.raises(UsageError) as error:
        pool.get("sdxl")
    message = str(error.value)
    assert message.startswith("model 'sdxl': path ") and "nowhere" in message and "\n" not in message


def test_a_folder_that_is_no_pipeline_fails_with_one_line(tmp_path: Path) -> None:
    pool = ModelPool({"sdxl": ModelEntry(role="diffusion", backend="diffusers", path=str(tmp_path))})
    with pytest.raises(UsageError, match=r"^model 'sdxl': .* is not a diffusers pipeline folder") as error:
        pool.get("sdxl")
    assert "\n" not in str(error.value)


def test_tiny_builds_are_deterministic_and_leave_the_global_seed_alone(tmp_path: Path) -> None:
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    first, second = make_tiny_sd15(tmp_path / "one"), make_tiny_sd15(tmp_path / "two")
    assert torch.equal(torch.random.get_rng_state(), state)
    for part in ("unet", "vae", "text_encoder"):
        (weights,) = (first / part).glob("*.safetensors")
        assert weights.read_bytes() == (second / part / weights.name).read_bytes()


def test_sdxl_vae_decodes_in_float32_when_the_pipeline_runs_in_float16(tiny_models: Any) -> None:
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(tiny_models("sdxl")["path"], dtype=torch.float16)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.vae.config.force_upcast and pipe.unet.dtype == torch.float16
    decode, seen = pipe.vae.decode, []

    def watched(latents: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        seen.append((pipe.vae.dtype, latents.dtype))
        return decode(latents, *args, **kwargs)

    pipe.vae.decode = watched
    (pair,) = generate_pairs(
        pipe, [PairRequest("a cat", "a dog", 0, "cat", "dog")], P2PConfig(height=64, width=64, steps=2)
    )
    assert seen == [(torch.float32, torch.float32)] and pipe.vae.dtype == torch.float16
    assert pair.finite and pair.prior.dtype == np.float16 and pair.a.dtype == np.uint8
