"""The PNG layout that runs and exports write, and a reader for exactly that layout.

`png_fast` writes 8-bit RGB with every row Sub-filtered, deflated by ISA-L at level 1 with a 1 KiB
window. Pillow at zlib level 1 spends most of its time trying five filters on every row and in
zlib; on the noisy side-by-side pictures of the quickstart one fixed filter (Sub: each byte minus the
same channel of the pixel to its left) deflated by ISA-L encodes 8-9x faster and comes out a few
percent smaller (benchmarks/export_speed.py). ISA-L also works outside the GIL, so export workers encode in
parallel. Any PNG reader decodes it to the same pixels as Pillow's. The bytes are the same on every
run for one ISA-L version (pinned in constraints.txt); ISA-L picks its code path by CPU, so another
CPU family may deflate differently (same pixels).

`read_fast` decodes that layout without Pillow: inflate by ISA-L, then undo Sub with a running sum
per channel (uint8, so it wraps as the filter does; by doubling steps, `undo_sub`). That is about
2x faster than Pillow on quickstart scenes (benchmarks/store_png.py), and decoding a pair is the
largest cost of an export.
It returns None for anything else, and the caller decodes with Pillow, so the pixels are always
Pillow's and a broken file fails as it always did. A file Pillow wrote (adaptive filters) is told
apart by its first rows' filter bytes, before the whole image is inflated.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
SUB = 1  # PNG filter type 1
RGB = 2  # PNG colour type 2, 8 bits a sample
CHANNELS = 3
MAX_DEFLATE_RATIO = 1032  # deflate's best: 258 bytes from a 2-bit code, plus headers
# deflate's window: 1 KiB, not 32. Sub-filtered photos and scenes repeat little beyond a few pixels,
# so a small window deflates 6-12% faster and 0-3% smaller (benchmarks/store_png.py)
WINDOW_BITS = 10
BAND_BYTES = 256 * 1024  # rows undone together (`undo_sub`): fits a core's L2 cache
PEEK_ROWS = 8  # rows whose filter bytes are checked before the whole image is inflated
_IHDR = struct.Struct(">IIBBBBB")  # width, height, bit depth, colour type, compression, filter, interlace


def png_fast(image: np.ndarray) -> bytes:
    return png_from_filtered(sub_filter(image))


def sub_filter(image: np.ndarray) -> np.ndarray:
    """The image's PNG scanlines, every row Sub: (h, 1 + 3w) uint8, the filter byte first."""
    height, width, channels = image.shape
    rows = np.ascontiguousarray(image, dtype=np.uint8).reshape(height, width * channels)
    filtered = np.empty((height, width * channels + 1), dtype=np.uint8)
    filtered[:, 0] = SUB
    filtered[:, 1 : channels + 1] = rows[:, :channels]
    np.subtract(rows[:, channels:], rows[:, :-channels], out=filtered[:, channels + 1 :])
    return filtered


def png_from_filtered(filtered: np.ndarray) -> bytes:
    """The PNG file of an RGB image's Sub scanlines (`sub_filter`'s layout: (h, 1 + 3w))."""
    from isal import igzip_lib

    height, width = filtered.shape[0], (filtered.shape[1] - 1) // CHANNELS
    header = _IHDR.pack(width, height, 8, RGB, 0, 0, 0)  # 8-bit RGB, no interlace
    data = igzip_lib.compress(filtered, 1, igzip_lib.COMP_ZLIB, igzip_lib.MEM_LEVEL_DEFAULT, WINDOW_BITS)
    return b"".join((SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", data), _chunk(b"IEND", b"")))


def read_fast(path: Path) -> np.ndarray | None:
    """The pixels (h, w, 3 uint8) of a PNG in `png_fast`'s layout, else None (decode with Pillow).

    Accepted: the signature, IHDR (8-bit RGB, no interlace), one or more IDAT, IEND, each chunk's
    length and CRC right (CRCs are cheap next to inflating, and Pillow does not check IDAT's), the
    stream inflating to exactly one filter byte plus a row for every row, every filter byte Sub,
    and no more pixels than Pillow opens without a warning. Anything else, ancillary chunks
    included (a colour key, gamma or ICC profile changes what Pillow's caller makes of the pixels),
    is None."""
    rows = read_rows(path)
    return None if rows is None else undo_sub(rows)


def read_rows(path: Path) -> np.ndarray | None:
    """`read_fast` before undoing the filter: the Sub rows without their filter bytes, (h, 3w)
    uint8, read-only; None where `read_fast` is None."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None  # Pillow raises its usual error for the caller
    return _decode(data) if data.startswith(SIGNATURE) else None


def _decode(data: bytes) -> np.ndarray | None:
    from isal import isal_zlib
    from PIL import Image

    chunks = _chunks(memoryview(data)[len(SIGNATURE) :])  # a view: no copy of a large file
    if chunks is None or len(chunks) < 3 or chunks[0][0] != b"IHDR" or chunks[-1][0] != b"IEND":
        return None
    if any(tag != b"IDAT" for tag, _ in chunks[1:-1]) or len(chunks[0][1]) != _IHDR.size:
        return None
    width, height, depth, colour, compression, filtering, interlace = _IHDR.unpack(chunks[0][1])
    if (depth, colour, compression, filtering, interlace) != (8, RGB, 0, 0, 0) or not width or not height:
        return None
    if Image.MAX_IMAGE_PIXELS is not None and width * height > Image.MAX_IMAGE_PIXELS:
        return None  # Pillow's own warning or DecompressionBombError
    stride = 1 + width * CHANNELS
    bodies = [body for _, body in chunks[1:-1]]
    stream = bodies[0] if len(bodies) == 1 else b"".join(bodies)
    if height * stride > MAX_DEFLATE_RATIO * len(stream):
        return None  # cannot inflate to that much: no buffer for a header's claim, Pillow reports it
    size = height * stride
    try:
        # the first rows' filters first: Pillow's adaptive filters show there, before paying for all
        head = isal_zlib.decompressobj().decompress(stream, min(height, PEEK_ROWS) * stride)
        if head[::stride].count(SUB) != len(head[::stride]):
            return None
        # then all of it into one buffer (one byte more than fits: a longer stream shows as a wrong
        # length); inflating the first rows again costs less than joining two large buffers
        inflate = isal_zlib.decompressobj()
        raw = inflate.decompress(stream, size + 1)
    except (isal_zlib.error, ValueError, MemoryError):
        return None
    if len(raw) != size or not inflate.eof or inflate.unused_data:
        return None
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, stride)
    if not np.all(rows[:, 0] == SUB):
        return None
    return rows[:, 1:]


def undo_sub(filtered: np.ndarray) -> np.ndarray:
    """The pixels (h, w, 3) of Sub rows without filter bytes (h, 3w): each row's running sum per
    channel, in uint8 (it wraps as the filter does).

    By doubling steps over a band of rows at a time (after the step of s pixels each byte holds the
    sum of the 2s pixels up to it): log2(width) whole-band adds, the band (about 256 KiB) staying in
    the CPU's cache. `np.cumsum` along the pixels loops over 3-byte rows and takes about 1.4x as long
    (benchmarks/store_png.py). numpy reads an overlapping input as it was before the add, which
    each step needs."""
    height, row = filtered.shape
    width = row // CHANNELS
    out = np.empty((height, row), dtype=np.uint8)
    band = max(1, BAND_BYTES // row)
    for top in range(0, height, band):
        rows = out[top : top + band]
        rows[:] = filtered[top : top + band]
        step = CHANNELS
        while step < row:
            np.add(rows[:, step:], rows[:, :-step], out=rows[:, step:])
            step *= 2
    return out.reshape(height, width, CHANNELS)


def _chunks(data: memoryview) -> list[tuple[bytes, memoryview]] | None:
    """(tag, body) of each chunk after the signature up to IEND; None when a length or CRC is wrong."""
    from isal import isal_zlib

    at, out = 0, []
    while at + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, at)
        end = at + 8 + length
        if end + 4 > len(data):
            return None
        tag, body = bytes(data[at + 4 : at + 8]), data[at + 8 : end]
        if isal_zlib.crc32(body, isal_zlib.crc32(tag)) != struct.unpack_from(">I", data, end)[0]:
            return None
        out.append((tag, body))
        if tag == b"IEND":
            return out
        at = end + 4
    return None


def _chunk(tag: bytes, data: bytes) -> bytes:
    from isal import isal_zlib

    crc = isal_zlib.crc32(data, isal_zlib.crc32(tag))  # ISA-L's: 0.02 vs 0.2 ms for 900 KB with zlib's
    return b"".join((struct.pack(">I", len(data)), tag, data, struct.pack(">I", crc)))
