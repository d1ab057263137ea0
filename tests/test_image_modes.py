"""Images of every PIL mode read as RGB by what their values mean (`imgdiff.pixels.to_rgb`)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from imgdiff.pixels import UnsupportedImage, to_rgb


def _reopened(image: Image.Image, fmt: str = "PNG") -> Image.Image:
    data = io.BytesIO()
    image.save(data, fmt)
    return Image.open(io.BytesIO(data.getvalue()))


def test_rgb_is_returned_as_stored() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    assert np.array_equal(to_rgb(Image.fromarray(pixels)), pixels)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16_bit_greyscale_is_scaled_not_clipped(fmt: str) -> None:
    values = np.array([[0, 257, 32768, 65535]], np.uint16)
    image = _reopened(Image.fromarray(values), fmt)
    assert image.mode.startswith("I")
    rgb = to_rgb(image)
    assert rgb.shape == (1, 4, 3) and np.array_equal(rgb[0, :, 0], [0, 1, 128, 255])
    assert np.array_equal(rgb[..., 0], rgb[..., 2])  # grey


def test_big_endian_16_bit_and_32_bit_integers() -> None:
    big = Image.frombytes("I;16B", (2, 1), np.array([1000, 65535], ">u2").tobytes())
    assert list(to_rgb(big)[0, :, 0]) == [4, 255]
    assert list(to_rgb(Image.fromarray(np.array([[0, 65535]], np.int32)))[0, :, 0]) == [0, 255]
    with pytest.raises(UnsupportedImage, match="outside 0-65535"):
        to_rgb(Image.fromarray(np.array([[-5, 70000]], np.int32)))


def test_float_pixels_are_refused_not_guessed() -> None:
    with pytest.raises(UnsupportedImage, match="mode F"):
        to_rgb(Image.fromarray(np.zeros((2, 2), np.float32)))


@pytest.mark.parametrize("mode", ["RGBA", "LA", "PA", "RGBa", "La"])
def test_alpha_is_composited_over_white(mode: str) -> None:
    rgba = Image.new("RGBA", (3, 1))
    rgba.putdata([(200, 10, 10, 255), (200, 10, 10, 0), (0, 0, 0, 128)])
    if mode == "La":  # PIL cannot convert to La; premultiplied grey values stored directly
        image = Image.frombytes("La", (3, 1), bytes([67, 255, 0, 0, 0, 128]))
    else:
        image = rgba.convert(mode) if mode != "PA" else rgba.convert("P").convert("PA")
    rgb = to_rgb(image).astype(int)
    assert np.all(rgb[0, 1] == 255)  # fully transparent: white, whatever colour lies under it
    assert np.all(np.abs(rgb[0, 2] - 127) <= 2)  # half black over white: mid grey
    assert to_rgb(rgba)[0, 0].tolist() == [200, 10, 10]


def test_palette_with_transparency_and_without() -> None:
    image = Image.new("P", (2, 1))
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.putdata([0, 1])
    assert to_rgb(image).tolist() == [[[255, 0, 0], [0, 0, 255]]]
    image.info["transparency"] = 1
    assert to_rgb(image).tolist() == [[[255, 0, 0], [255, 255, 255]]]
    gif = _reopened(image, "GIF")
    assert to_rgb(gif)[0, 1].tolist() == [255, 255, 255]


def test_cmyk_lab_bilevel_and_other_modes() -> None:
    assert to_rgb(Image.new("CMYK", (1, 1), (0, 255, 255, 0))).tolist() == [[[255, 0, 0]]]
    assert to_rgb(Image.new("CMYK", (1, 1), (0, 0, 0, 255))).tolist() == [[[0, 0, 0]]]
    mid_grey = to_rgb(Image.new("LAB", (1, 1), (128, 128, 128)))[0, 0]
    assert np.all(np.abs(mid_grey.astype(int) - 119) <= 2)  # L* 50 is sRGB 119
    assert to_rgb(Image.new("1", (2, 1), 1)).tolist() == [[[255, 255, 255]] * 2]
    for mode in ("L", "YCbCr", "HSV", "I;16L"):
        out = to_rgb(Image.new(mode, (3, 2)))
        assert out.shape == (2, 3, 3) and out.dtype == np.uint8
