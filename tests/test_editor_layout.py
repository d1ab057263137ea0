"""The full-size editors `benchmarks/editor_speed.py --full` builds, checked on the meta device (no
memory, no weights): the published parameter counts, the final dtype, an 8x VAE."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

# Billions of parameters of the published checkpoints' main parts.
PUBLISHED = {
    "instruct-pix2pix": ("unet", 0.86),  # SD 1.5's UNet with 8 input channels
    "flux-kontext": ("transformer", 11.9),  # FLUX.1 [dev]'s 12 B transformer
    "qwen-image-edit": ("transformer", 20.4),  # Qwen-Image's 20 B MMDiT
}


@pytest.mark.slow
@pytest.mark.parametrize("family", list(PUBLISHED))
def test_full_size_editors_have_the_published_layout(family: str, tmp_path: Path) -> None:
    import torch
    from editor_speed import full_pipeline

    pipe = full_pipeline(family, tmp_path, device="meta")
    part, billions = PUBLISHED[family]
    count = sum(p.numel() for p in getattr(pipe, part).parameters()) / 1e9
    assert count == pytest.approx(billions, rel=0.01)
    expected = torch.float16 if family == "instruct-pix2pix" else torch.bfloat16
    assert getattr(pipe, part).dtype == expected and pipe.vae_scale_factor == 8
    assert torch.get_default_dtype() == torch.float32  # restored after the build
