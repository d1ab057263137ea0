"""The side-by-side image that every difference sample is built on.

Img-Diff shows the model ONE image: left image | black bar | right image, with the same red box
drawn on both halves (METHOD.md section 4.4), both when captioning and in the training sample
(section 4.5). Drawing is numpy slicing, so the pixels are exact and no font or download is needed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from imgdiff.store import pillow_png

# METHOD.md section 4.4: a 20 px black bar, a red box of line width 3, the box grown by 5 px.
BAR = 20
LINE = 3
GROW = 5
RED = (255, 0, 0)


def grown_box(box: Sequence[float], width: int, height: int) -> tuple[int, int, int, int]:
    """The pixel rectangle the frame is drawn on: inclusive (x1, y1, x2, y2), grown and clamped.

    A box is continuous [x1, y1, x2, y2], so it covers columns floor(x1) .. ceil(x2) - 1."""
    if len(box) != 4:
        raise ValueError(f"a box is [x1, y1, x2, y2], got {list(box)}")
    x1, y1 = int(np.floor(box[0])) - GROW, int(np.floor(box[1])) - GROW
    x2, y2 = int(np.ceil(box[2])) - 1 + GROW, int(np.ceil(box[3])) - 1 + GROW
    return max(x1, 0), max(y1, 0), min(x2, width - 1), min(y2, height - 1)


def box_on(image: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """A copy of `image` (RGB uint8) with a red frame, LINE px wide, inside the grown box."""
    out = np.array(_rgb(image), copy=True)
    draw_frame(out, frame_rect(box, out.shape[1], out.shape[0]))
    return out


def frame_rect(box: Sequence[float], width: int, height: int) -> tuple[int, int, int, int]:
    """`grown_box`, refusing a box that lies outside the image."""
    x1, y1, x2, y2 = grown_box(box, width, height)
    if x1 > x2 or y1 > y2:
        raise ValueError(f"box {list(box)} lies outside the {width}x{height} image")
    return x1, y1, x2, y2


def draw_frame(out: np.ndarray, rect: tuple[int, int, int, int], top: int = 0) -> None:
    """The red frame of `rect` (image coordinates) drawn in place on `out`, the image's rows from
    `top` on (all the rows of the frame)."""
    x1, y1, x2, y2 = rect
    y1, y2 = y1 - top, y2 - top
    out[y1 : min(y1 + LINE, y2 + 1), x1 : x2 + 1] = RED
    out[max(y2 - LINE + 1, y1) : y2 + 1, x1 : x2 + 1] = RED
    out[y1 : y2 + 1, x1 : min(x1 + LINE, x2 + 1)] = RED
    out[y1 : y2 + 1, max(x2 - LINE + 1, x1) : x2 + 1] = RED


def side_by_side(a: np.ndarray, b: np.ndarray, box: Sequence[float] | None = None) -> np.ndarray:
    """Left image | BAR px of black | right image, with `box` framed at the same place on both."""
    a, b = _rgb(a), _rgb(b)
    if a.shape != b.shape:
        raise ValueError(f"the two images differ in size: {a.shape[:2]} vs {b.shape[:2]}")
    if box is not None:
        a, b = box_on(a, box), box_on(b, box)
    bar = np.zeros((a.shape[0], BAR, 3), dtype=np.uint8)
    return np.concatenate([a, bar, b], axis=1)


def side_by_side_scanlines(a_rows: np.ndarray, b_rows: np.ndarray, box: Sequence[float] | None) -> np.ndarray:
    """`png.sub_filter(side_by_side(a, b, box))` from a's and b's own Sub rows (`png.read_rows`),
    without their pixels: an export's picture straight from the run's PNGs.

    With Sub, each pixel is stored minus the one to its left, so a row of the picture is a's row as
    stored, then the bar (its first pixel minus a's last pixel, then zeros), then b's row as stored
    (its first pixel minus the bar's black is itself). a's last pixel is the sum of its stored row.
    Only the rows the frame crosses are undone to pixels, framed and filtered again."""
    if a_rows.shape != b_rows.shape:
        raise ValueError(f"the two images differ in size: {a_rows.shape} vs {b_rows.shape}")
    from imgdiff.png import SUB, sub_filter, undo_sub

    height, row = a_rows.shape
    width = row // 3
    out = np.zeros((height, 1 + 3 * (2 * width + BAR)), dtype=np.uint8)  # zeros: the bar past its first pixel
    out[:, 0] = SUB
    out[:, 1 : 1 + row] = a_rows
    np.negative(_row_sums(a_rows), out=out[:, 1 + row : 4 + row])  # black minus a's last pixel (mod 256)
    out[:, 1 + 3 * (width + BAR) :] = b_rows
    if box is not None:
        rect = frame_rect(box, width, height)
        top, bottom = rect[1], rect[3] + 1
        a, b = undo_sub(a_rows[top:bottom]), undo_sub(b_rows[top:bottom])
        draw_frame(a, rect, top)
        draw_frame(b, rect, top)
        bar = np.zeros((bottom - top, BAR, 3), dtype=np.uint8)
        out[top:bottom] = sub_filter(np.concatenate([a, bar, b], axis=1))
    return out


def _row_sums(rows: np.ndarray) -> np.ndarray:
    """Per row and channel, the sum of (h, 3w) uint8 values mod 256: (h, 3). By folding halves,
    a few whole-array adds (numpy's sum along the pixels loops over 3-byte rows)."""
    pixels = rows.reshape(rows.shape[0], -1, 3)
    while pixels.shape[1] > 1:
        half = pixels.shape[1] // 2
        folded = pixels[:, :half] + pixels[:, half : 2 * half]
        if pixels.shape[1] % 2:
            folded[:, 0] += pixels[:, -1]
        pixels = folded
    return pixels[:, 0]


def png_bytes(image: np.ndarray) -> bytes:
    """Lossless PNG bytes with no metadata, by Pillow at zlib level 1 (the export's `pillow`
    encoder: the bytes of version 1 exports): the same pixels always give the same bytes."""
    return pillow_png(Image.fromarray(_rgb(image)))


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 image (h, w, 3), got {image.dtype} {image.shape}")
    return image
