"""Pixel helpers: every image read as RGB, and what the weight-free stages share (a working copy,
CIE Lab, and a colour difference map).

Differences are measured in CIE Lab because there Euclidean distance (delta-E, CIE76) roughly
follows perceived colour difference: about 2.3 is just noticeable, above about 10 two colours look
clearly different. RGB distance over-weights green and under-weights dark changes.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image, ImageCms

# The largest CIE76 delta-E between two sRGB colours (blue against green is 258.7): the top of
# every delta-E score's range.
DELTA_E_MAX = 260.0


class UnsupportedImage(ValueError):
    """Pixels whose meaning is ambiguous (32-bit float, 32-bit integers beyond 16-bit range)."""


WHITE = 255  # transparent pixels are composited over white, like a page shows them


def to_rgb(image: Image.Image) -> np.ndarray:
    """Any decoded PIL image -> RGB uint8 HxWx3, each mode by what its values mean.

    - 16-bit greyscale (`I;16*`, and `I`, which PIL uses for 16-bit PNGs) is scaled by 255/65535,
      not clipped at 255 (PIL's own `convert` clips: a 16-bit photo turns white). An `I` image
      with values outside 0-65535, and a float `F` image (no agreed range), are UnsupportedImage.
    - Alpha (`RGBA`, `LA`, `PA`, premultiplied `RGBa`/`La`, a palette's or colour key's
      transparency) is composited over white: colours under transparent pixels are often left-over
      garbage that would differ between a and b, and white is how a page shows them.
    - CMYK and Lab go through their embedded ICC profile (or the standard Lab one) to sRGB when
      little-cms can read it; CMYK without a profile uses PIL's plain inversion.
    - Everything else (`1`, `L`, `P`, `RGB`, `YCbCr`, `HSV`) uses PIL's conversion; other ICC
      profiles are not applied, so an RGB image's values stay as stored."""
    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return np.asarray(image)
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(image).astype(np.int64)  # native order, whatever the file's
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise UnsupportedImage(f"mode {mode} with values outside 0-65535")
        grey = ((values + 128) // 257).astype(np.uint8)  # round(v * 255 / 65535)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode == "F":
        raise UnsupportedImage("mode F (32-bit float pixels have no agreed range)")
    if mode in ("CMYK", "LAB"):
        return np.asarray(_through_profile(image))
    if mode in ("RGBa", "La"):  # premultiplied: colour over white is colour + (1 - alpha) white
        stored = np.asarray(image).astype(np.uint16)
        mixed = np.minimum(stored[..., :-1] + (WHITE - stored[..., -1:]), 255).astype(np.uint8)
        return mixed if mode == "RGBa" else np.repeat(mixed, 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = np.asarray(image.convert("RGBA"))
        alpha = rgba[..., 3:].astype(np.uint16)
        mixed = (rgba[..., :3] * alpha + WHITE * (255 - alpha) + 127) // 255
        return mixed.astype(np.uint8)
    return np.asarray(image.convert("RGB"))


def _through_profile(image: Image.Image) -> Image.Image:
    """A CMYK or Lab image in sRGB by its ICC profile; PIL's plain conversion when there is none
    (or little-cms cannot use it)."""
    embedded = image.info.get("icc_profile")
    try:
        if embedded:
            source = ImageCms.ImageCmsProfile(io.BytesIO(embedded))
        elif image.mode == "LAB":
            source = ImageCms.createProfile("LAB")
        else:
            return image.convert("RGB")
        srgb = ImageCms.createProfile("sRGB")
        return ImageCms.profileToProfile(image, source, srgb, outputMode="RGB")  # type: ignore[return-value]
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image.convert("RGB")


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
