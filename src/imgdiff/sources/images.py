"""Reading the user's images for a source: where they may lie, how big they may be, how to decode.

An untrusted item must not pull files from elsewhere on the machine into a dataset, and must not
cost minutes of decoding before it is turned away. So a path is checked by its text before any
file is touched, and an image's size is read from its header (PIL opens lazily) before its pixels
are decoded. Every failure is a `BadItem` with its reason code: `unsafe_path`, `missing_file`,
`corrupt_image`, `too_large`, `size_mismatch`.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from imgdiff.pixels import UnsupportedImage, to_rgb
from imgdiff.sources.base import BadItem

# Per image: 64 MP (an 8000x8000 photo, 192 MB as RGB) is far above any training resolution; PIL
# itself refuses from 179 MP on, as a decompression bomb.
MAX_PIXELS = 64_000_000


def confined_path(folder: Path, name: str, what: str, allow_outside: bool) -> Path:
    """`folder / name`, or BadItem("unsafe_path: ...") when `name` is absolute or climbs out of
    `folder` with `..` and `allow_outside` is off. Checked on the text: a symlink inside the folder
    was put there by the folder's owner and is followed."""
    if "\0" in name:
        raise BadItem(f"unsafe_path: {what} holds a NUL character")
    if allow_outside:
        return folder / name  # an absolute name replaces the folder
    if Path(name).is_absolute():
        raise BadItem(
            f"unsafe_path: {what} '{name}' is absolute; paths are relative to the source's folder "
            "(set allow_outside_paths: true to allow others)"
        )
    normal = os.path.normpath(name)
    if normal == ".." or normal.startswith(".." + os.sep):
        raise BadItem(
            f"unsafe_path: {what} '{name}' leads out of the source's folder "
            "(set allow_outside_paths: true to allow it)"
        )
    return folder / normal


@contextlib.contextmanager
def opened(path: Path, what: str, shown: str, max_pixels: int) -> Iterator[Image.Image]:
    """The image at `path`, opened lazily (header only), refused when larger than `max_pixels`."""
    if not path.is_file():
        raise BadItem(f"missing_file: {what} '{shown}' not found")
    try:
        with warnings.catch_warnings():
            # PIL warns from 89 MP on; `max_pixels` is the limit that counts here.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise BadItem(f"too_large: {what} '{shown}': {exc}") from None
    except (OSError, ValueError, SyntaxError) as exc:  # UnidentifiedImageError is an OSError
        raise BadItem(f"corrupt_image: {what} '{shown}': {exc}") from None
    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise BadItem(
                f"too_large: {what} '{shown}' is {width}x{height} ({width * height / 1e6:.1f} MP), "
                f"over max_pixels {max_pixels}"
            )
        yield image


def decoded(image: Image.Image, what: str, shown: str) -> np.ndarray:
    """The opened image's pixels as RGB uint8 (`imgdiff.pixels.to_rgb`), or BadItem."""
    try:
        image.load()
        return to_rgb(image)
    except UnsupportedImage as exc:
        raise BadItem(f"corrupt_image: {what} '{shown}': unsupported pixels, {exc}") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise BadItem(f"corrupt_image: {what} '{shown}': {exc}") from None
