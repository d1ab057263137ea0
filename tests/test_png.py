"""imgdiff/png.py: the fast layout reads back as Pillow's pixels; anything else is left to Pillow."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from imgdiff.pixels import to_rgb
from imgdiff.png import SIGNATURE, png_fast, read_fast
from imgdiff.record import Record
from imgdiff.store import ImageLoader, RunStore

# the last two: several bands of rows in `_undo_sub`, and rows wider than one band
SIZES = [(1, 1), (1, 9), (7, 1), (31, 17), (64, 64), (300, 300), (3, 100_000)]


def _pillow(path: Path) -> np.ndarray:
    """How the run read an image before the fast reader."""
    with Image.open(path) as image:
        return to_rgb(image)


def _outcome(read: Any, path: Path) -> tuple[Any, ...]:
    try:
        return ("pixels", read(path).tobytes())
    except Exception as error:  # noqa: BLE001 - the point is the same error, whatever it is
        return ("error", type(error), str(error))


def _loaded(path: Path) -> np.ndarray:
    """The run's reader (ImageLoader) on a file at `path`."""
    record = Record(id="abcdef012345", source_index=0, seed=0, images={"a": path.name})
    return ImageLoader(path.parent).load(record, "a")


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def _png(header: bytes, raw: bytes, extra: bytes = b"", idat_parts: int = 1) -> bytes:
    stream = zlib.compress(raw, 1)
    step = -(-len(stream) // idat_parts)
    idats = b"".join(_chunk(b"IDAT", stream[i : i + step]) for i in range(0, len(stream), step))
    return SIGNATURE + _chunk(b"IHDR", header) + extra + idats + _chunk(b"IEND", b"")


def _rgb_header(width: int, height: int, depth: int = 8, interlace: int = 0) -> bytes:
    return struct.pack(">IIBBBBB", width, height, depth, 2, 0, 0, interlace)


def _rows(image: np.ndarray, filters: list[int]) -> bytes:
    """Rows with filter 0 (None) or 1 (Sub) as given per row."""
    height, width, _ = image.shape
    out = []
    for y in range(height):
        row = image[y].astype(np.int16)
        if filters[y] == 1:
            row[1:] -= image[y, :-1]
        out.append(bytes([filters[y]]) + (row % 256).astype(np.uint8).tobytes())
    return b"".join(out)


@pytest.mark.parametrize("height,width", SIZES)
@pytest.mark.parametrize("content", ["random", "flat"])
def test_fast_png_reads_back_as_pillows_pixels(tmp_path: Path, height: int, width: int, content: str) -> None:
    rng = np.random.default_rng(height * 100 + width)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    if content == "flat":
        image[:] = (255, 7, 0)
    path = tmp_path / "x.png"
    path.write_bytes(png_fast(image))
    pixels = read_fast(path)
    assert pixels is not None and pixels.dtype == np.uint8
    assert np.array_equal(pixels, _pillow(path)) and np.array_equal(pixels, image)
    assert np.array_equal(_loaded(path), image)


def test_several_idat_chunks_are_joined(tmp_path: Path) -> None:
    image = np.random.default_rng(1).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    path = tmp_path / "x.png"
    path.write_bytes(_png(_rgb_header(30, 40), _rows(image, [1] * 40), idat_parts=5))
    pixels = read_fast(path)
    assert pixels is not None and np.array_equal(pixels, image) and np.array_equal(pixels, _pillow(path))


def _pillow_written(tmp_path: Path, image: Image.Image, **save: Any) -> Path:
    path = tmp_path / "x.png"
    image.save(path, format="PNG", **save)
    return path


def _other_layouts(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)
    rgb[:, :10] = rgb[:1, :10]  # flat columns: Pillow's adaptive filters pick Up there
    grey = rng.integers(0, 256, (24, 20), dtype=np.uint8)
    paths = {}
    for name, make in {
        "pillow_adaptive": lambda: _pillow_written(tmp_path, Image.fromarray(rgb), compress_level=1),
        "palette": lambda: _pillow_written(tmp_path, Image.fromarray(rgb).quantize(16)),
        "grey": lambda: _pillow_written(tmp_path, Image.fromarray(grey)),
        "rgba": lambda: _pillow_written(tmp_path, Image.fromarray(np.dstack([rgb, grey]))),
    }.items():
        paths[name] = make().rename(tmp_path / f"{name}.png")
    hand_made = {
        # a None row after the rows checked first: only the full check sees it
        "late_none_row": _png(_rgb_header(20, 24), _rows(rgb, [1] * 20 + [0] + [1] * 3)),
        "interlaced": _png(_rgb_header(20, 24, interlace=1), _adam7(rgb)),
        "16_bit": _png(_rgb_header(20, 24, depth=16), _rows16(rgb)),
        "colour_key": _png(
            _rgb_header(20, 24), _rows(rgb, [1] * 24), _chunk(b"tRNS", bytes(rgb[0, 0].repeat(2)))
        ),
        "gamma": _png(_rgb_header(20, 24), _rows(rgb, [1] * 24), _chunk(b"gAMA", struct.pack(">I", 45455))),
    }
    for name, data in hand_made.items():
        paths[name] = tmp_path / f"{name}.png"
        paths[name].write_bytes(data)
    return paths


def _adam7(image: np.ndarray) -> bytes:
    """The seven passes of an interlaced PNG, each row filter None."""
    passes = [
        (0, 0, 8, 8),
        (4, 0, 8, 8),
        (0, 4, 4, 8),
        (2, 0, 4, 4),
        (0, 2, 2, 4),
        (1, 0, 2, 2),
        (0, 1, 1, 2),
    ]
    out = []
    for x0, y0, dx, dy in passes:
        part = image[y0::dy, x0::dx]
        if part.size:
            out.extend(b"\x00" + row.tobytes() for row in part)
    return b"".join(out)


def _rows16(image: np.ndarray) -> bytes:
    wide = image.astype(">u2") * 257
    return b"".join(b"\x00" + row.tobytes() for row in wide)


def test_every_other_layout_is_left_to_pillow(tmp_path: Path) -> None:
    for name, path in _other_layouts(tmp_path).items():
        assert read_fast(path) is None, name
        assert np.array_equal(_loaded(path), _pillow(path)), name


@pytest.mark.parametrize(
    "damage",
    [
        "truncated_idat",
        "no_iend",
        "idat_crc",
        "ihdr_crc",
        "garbage_stream",
        "short_stream",
        "long_stream",
        "trailing_data",
        "huge_header",
        "not_png",
        "empty",
    ],
)
def test_a_damaged_file_fails_or_decodes_as_pillow_has_it(tmp_path: Path, damage: str) -> None:
    image = np.random.default_rng(3).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    good = png_fast(image)
    idat = good.index(b"IDAT") - 4
    (length,) = struct.unpack_from(">I", good, idat)
    body = slice(idat + 8, idat + 8 + length)
    data = bytearray(good)
    if damage == "truncated_idat":
        data = data[: idat + 8 + length // 2]
    elif damage == "no_iend":
        data = data[: body.stop + 4]
    elif damage == "idat_crc":
        data[body.stop] ^= 0xFF
    elif damage == "ihdr_crc":
        data[8 + 8 + 13] ^= 0xFF
    elif damage in ("garbage_stream", "short_stream"):
        stream = bytes(length) if damage == "garbage_stream" else zlib.compress(_rows(image[:-1], [1] * 31))
        data = bytearray(good[:idat] + _chunk(b"IDAT", stream) + good[body.stop + 4 :])
    elif damage == "long_stream":  # one row more than the header says
        tall = np.concatenate([image, image[:1]])
        stream = zlib.compress(_rows(tall, [1] * 33))
        data = bytearray(good[:idat] + _chunk(b"IDAT", stream) + good[body.stop + 4 :])
    elif damage == "trailing_data":  # bytes after the end of the deflate stream
        stream = zlib.compress(_rows(image, [1] * 32)) + b"\x00\x01"
        data = bytearray(good[:idat] + _chunk(b"IDAT", stream) + good[body.stop + 4 :])
    elif damage == "huge_header":  # a header claiming far more pixels than the stream holds
        data = bytearray(good[:8] + _chunk(b"IHDR", _rgb_header(9000, 9000)) + good[8 + 25 :])
    elif damage == "not_png":
        data = bytearray(b"not an image at all")
    else:
        data = bytearray()
    path = tmp_path / "x.png"
    path.write_bytes(bytes(data))
    assert read_fast(path) is None
    assert _outcome(_loaded, path) == _outcome(_pillow, path)


def test_a_missing_file_raises_as_before(tmp_path: Path) -> None:
    path = tmp_path / "gone.png"
    assert read_fast(path) is None
    assert _outcome(_loaded, path) == _outcome(_pillow, path)
    assert _outcome(_loaded, path)[1] is FileNotFoundError


def test_the_store_writes_rgb_arrays_in_the_fast_layout_and_the_rest_by_pillow(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    rgb = np.random.default_rng(4).integers(0, 256, (16, 12, 3), dtype=np.uint8)
    record = Record(
        id="abcdef012345", source_index=0, seed=0, artifacts={"a": rgb, "b": Image.fromarray(rgb)}
    )
    store.write_artifacts(record)
    written = {name: tmp_path / record.images[name] for name in ("a", "b")}
    assert written["a"].read_bytes() == png_fast(rgb)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", compress_level=1)
    assert written["b"].read_bytes() == buffer.getvalue()
    for path in written.values():
        assert np.array_equal(_pillow(path), rgb)
