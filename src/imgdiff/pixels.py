"""Pixel helpers the weight-free stages share: a working copy, CIE Lab, and a colour difference map.

Differences are measured in CIE Lab because there Euclidean distance (delta-E, CIE76) roughly
follows perceived colour difference: about 2.3 is just noticeable, above about 10 two colours look
clearly different. RGB distance over-weights green and under-weights dark changes.
"""

from __future__ import annotations

import cv2
import numpy as np

# The largest CIE76 delta-E between two sRGB colours (blue against green is 258.7): the top of
# every delta-E score's range.
DELTA_E_MAX = 260.0


def working_copy(rgb: np.ndarray, size: int, blur: float) -> np.ndarray:
    """RGB uint8 -> float32 RGB in [0, 1], area-downscaled to a long side of at most `size` (never
    upscaled) and Gaussian-blurred with sigma `blur` pixels (0: not blurred).

    Averaging and blurring take out pixel noise. A bounded size keeps pixel-based settings (blur,
    kernels) meaning the same on a 64 px test image and a 1024 px SDXL image."""
    height, width = rgb.shape[:2]
    scale = size / max(height, width)
    if scale < 1.0:
        shape = (max(1, round(width * scale)), max(1, round(height * scale)))
        rgb = cv2.resize(rgb, shape, interpolation=cv2.INTER_AREA)
    image = rgb.astype(np.float32) / 255.0
    return cv2.GaussianBlur(image, (0, 0), blur) if blur > 0 else image


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """Float RGB in [0, 1] -> CIE Lab float32 with L in [0, 100] (cv2's uint8 path would rescale L)."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)


def delta_e(lab_a: np.ndarray, lab_b: np.ndarray) -> np.ndarray:
    """Per-pixel Euclidean distance in Lab (CIE76 delta-E), float32 HxW."""
    diff = lab_a - lab_b
    return np.sqrt(np.einsum("hwc,hwc->hw", diff, diff)).astype(np.float32)
