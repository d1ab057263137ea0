from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgdiff.png import _decode as read_rows_of
from imgdiff.png import png_fast, png_from_filtered, sub_filter
from imgdiff.render import (
    BAR,
    GROW,
    LINE,
    RED,
    box_on,
    grown_box,
    png_bytes,
    side_by_side,
    side_by_side_scanlines,
)

H, W = 40, 60


def _images() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    a = rng.integers(30, 200, size=(H, W, 3), dtype=np.uint8)  # never pure red, never black
    return a, a[:, ::-1].copy()


def _frame(x1: int, y1: int, x2: int, y2: int) -> np.ndarray:
    """Boolean mask of the LINE-px frame inside the inclusive rectangle (x1, y1, x2, y2)."""
    mask = np.zeros((H, W), dtype=bool)
    mask[y1 : y2 + 1, x1 : x2 + 1] = True
    mask[y1 + LINE : y2 + 1 - LINE, x1 + LINE : x2 + 1 - LINE] = False
    return mask


def test_constants_are_the_papers() -> None:
    assert (BAR, LINE, GROW, RED) == (20, 3, 5, (255, 0, 0))


def test_without_a_box_the_halves_are_the_images_and_the_bar_is_black() -> None:
    a, b = _images()
    out = side_by_side(a, b)
    assert out.shape == (H, 2 * W + BAR, 3) and out.dtype == np.uint8
    assert np.array_equal(out[:, :W], a) and np.array_equal(out[:, W + BAR :], b)
    assert not out[:, W : W + BAR].any()


def test_box_is_drawn_grown_on_both_halves_and_nothing_else_changes() -> None:
    a, b = _images()
    out = side_by_side(a, b, [20, 12, 35.5, 25])
    frame = _frame(20 - GROW, 12 - GROW, 35 + GROW, 24 + GROW)  # ceil(35.5) - 1 = 35
    for half, original in ((out[:, :W], a), (out[:, W + BAR :], b)):
        assert (half[frame] == RED).all()
        assert np.array_equal(half[~frame], original[~frame])  # interior and outside untouched
    assert not out[:, W : W + BAR].any()


def test_box_at_the_edge_is_clamped_to_the_image() -> None:
    a, b = _images()
    assert grown_box([0, 0, 10, 8], W, H) == (0, 0, 14, 12)
    assert grown_box([50, 30, 60, 40], W, H) == (45, 25, W - 1, H - 1)
    out = side_by_side(a, b, [50, 30, 60, 40])
    frame = _frame(45, 25, W - 1, H - 1)
    assert (out[:, W + BAR :][frame] == RED).all()
    assert np.array_equal(out[:, :W][~frame], a[~frame])


def test_box_on_leaves_its_input_alone() -> None:
    a, _ = _images()
    before = a.copy()
    framed = box_on(a, [5, 5, 15, 15])
    assert np.array_equal(a, before) and not np.array_equal(framed, a)


def test_bad_inputs_are_rejected() -> None:
    a, _ = _images()
    with pytest.raises(ValueError, match="differ in size"):
        side_by_side(a, a[:, :-1])
    with pytest.raises(ValueError, match="RGB uint8"):
        side_by_side(a.astype(np.float32), a)
    with pytest.raises(ValueError, match="outside"):
        box_on(a, [W + 10, 0, W + 20, 5])
    with pytest.raises(ValueError, match=r"\[x1, y1, x2, y2\]"):
        box_on(a, [1, 2, 3])


def test_png_is_lossless_and_deterministic(tmp_path: Path) -> None:
    a, b = _images()
    image = side_by_side(a, b, [10, 10, 20, 20])
    assert png_bytes(image) == png_bytes(image.copy())
    with Image.open(io.BytesIO(png_bytes(image))) as decoded:
        assert np.array_equal(np.asarray(decoded), image)


@pytest.mark.parametrize("height,width", [(1, 1), (1, 2), (7, 5), (31, 17), (H, W), (300, 90)])
def test_the_picture_from_scanlines_is_the_drawn_picture_filtered(height: int, width: int) -> None:
    """`side_by_side_scanlines` on a's and b's stored rows gives exactly the Sub rows of the drawn
    picture (so the same PNG bytes), for boxes anywhere: none, whole, tiny, at edges, partly out."""
    rng = np.random.default_rng(height * 1000 + width)
    boxes: list[list[float] | None] = [None, [0, 0, width, height], [0.5, 0.5, 1.2, 1.7]]
    boxes += [[width - 1.5, height - 0.2, width + 9, height + 9], [-8, -8, 0.3, 0.3]]
    for _ in range(12):
        x, y = rng.uniform(-10, width + 5), rng.uniform(-10, height + 5)
        boxes.append([x, y, x + rng.uniform(0, width), y + rng.uniform(0, height)])
    drawn = 0
    for box in boxes:
        a, b = (rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(2))
        rows = [_stored_rows(image) for image in (a, b)]
        try:
            picture = side_by_side(a, b, box)
        except ValueError:
            with pytest.raises(ValueError):
                side_by_side_scanlines(*rows, box)
            continue
        scanlines = side_by_side_scanlines(*rows, box)
        assert np.array_equal(scanlines, sub_filter(picture)), box
        assert png_from_filtered(scanlines) == png_fast(picture)
        drawn += 1
    assert drawn >= 8


def _stored_rows(image: np.ndarray) -> np.ndarray:
    """An image's rows as `read_rows` gives them from the run store's file."""
    rows = read_rows_of(png_fast(image))
    assert rows is not None
    return rows
