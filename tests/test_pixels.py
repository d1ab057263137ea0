from __future__ import annotations

import numpy as np
import pytest

from imgdiff.pixels import delta_e, to_lab, working_copy


def test_working_copy_only_ever_downscales_and_keeps_the_aspect() -> None:
    rgb = np.full((100, 200, 3), 255, np.uint8)
    small = working_copy(rgb, 50, 0.0)
    assert small.shape == (25, 50, 3) and small.dtype == np.float32
    assert np.allclose(small, 1.0)
    assert working_copy(rgb, 400, 0.0).shape == (100, 200, 3)


def test_working_copy_averages_noise_away() -> None:
    noise = np.random.default_rng(0).normal(128, 6, (256, 256, 3))
    rgb = np.clip(noise, 0, 255).astype(np.uint8)
    assert working_copy(rgb, 256, 2.0).std() * 255 < 1.0 < working_copy(rgb, 256, 0.0).std() * 255


def test_lab_has_lightness_in_0_to_100() -> None:
    rgb = np.array([[[0, 0, 0], [255, 255, 255], [128, 128, 128]]], np.uint8)
    lab = to_lab(working_copy(rgb, 8, 0.0))
    assert lab[0, :, 0] == pytest.approx([0.0, 100.0, 53.6], abs=0.2)
    assert np.abs(lab[0, :, 1:]).max() < 0.01  # greys have no chroma


def test_delta_e_is_the_lab_distance() -> None:
    black = to_lab(np.zeros((2, 3, 3), np.float32))
    white = to_lab(np.ones((2, 3, 3), np.float32))
    red = to_lab(np.tile(np.float32([1, 0, 0]), (2, 3, 1)))
    assert delta_e(black, white) == pytest.approx(np.full((2, 3), 100.0), abs=0.01)
    assert delta_e(white, white).max() == 0.0 and delta_e(black, white).dtype == np.float32
    assert delta_e(white, red)[0, 0] == pytest.approx(np.linalg.norm(white[0, 0] - red[0, 0]))
