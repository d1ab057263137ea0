"""The run store's PNGs: Pillow at zlib level 1 (what the store wrote before) versus `png_fast`, and
reading them back: Pillow versus `read_fast` (and `read_fast` undoing Sub by `np.cumsum`, as it did
first, versus its banded doubling steps), and `png_fast` with deflate's full 32 KiB window versus its
1 KiB one (`WINDOW_BITS`). One run, interleaved.

    python benchmarks/store_png.py [--pairs 10] [--sizes 512,1024]

Encodes quickstart scenes (the synthetic source's a and b images) both ways and decodes each file
as the run reads it (`ImageLoader`: Pillow then `to_rgb`; or `read_fast`, which falls back to
Pillow for a file in another layout, so Pillow's files are read by Pillow; `fast_cumsum` reads the
fast files by `read_fast` with `np.cumsum` in place of `undo_sub`). Prints JSON per size: median
milliseconds per image to encode and to decode, mean kilobytes, and the ratios.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

import imgdiff.png
from imgdiff.pixels import to_rgb
from imgdiff.png import png_fast, read_fast
from imgdiff.record import Record
from imgdiff.sources.synthetic import SyntheticSource


def images(pairs: int, size: int) -> list[np.ndarray]:
    source = SyntheticSource(SyntheticSource.Settings(count=pairs, size=size))
    batch = [(Record(id=f"{i:012x}", source_index=i, seed=i), i) for i in range(pairs)]
    return [r.artifacts[n] for r in source.load(batch) if r.artifacts for n in ("a", "b")]


def pillow_png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def pillow_read(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return to_rgb(image)


def png_fast_window15(image: np.ndarray) -> bytes:
    small = imgdiff.png.WINDOW_BITS
    imgdiff.png.WINDOW_BITS = 15
    try:
        return png_fast(image)
    finally:
        imgdiff.png.WINDOW_BITS = small


def read_fast_cumsum(path: Path) -> np.ndarray | None:
    banded = imgdiff.png.undo_sub
    imgdiff.png.undo_sub = lambda rows: np.cumsum(rows.reshape(rows.shape[0], -1, 3), axis=1, dtype=np.uint8)
    try:
        return read_fast(path)
    finally:
        imgdiff.png.undo_sub = banded


def timed(work: Callable[[Any], Any], arg: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    out = work(arg)
    return time.perf_counter() - started, out


def measure(pairs: int, size: int, folder: Path) -> dict[str, float]:
    encode: dict[str, list[float]] = {"pillow": [], "fast": [], "fast_window15": []}
    decode: dict[str, list[float]] = {"pillow": [], "fast": [], "fast_window15": [], "fast_cumsum": []}
    kb: dict[str, list[float]] = {"pillow": [], "fast": [], "fast_window15": []}
    writers = {"pillow": pillow_png, "fast": png_fast, "fast_window15": png_fast_window15}
    readers = {"pillow": pillow_read, "fast": read_fast, "fast_window15": read_fast}
    for n, image in enumerate(images(pairs, size)):
        for name, write in writers.items():
            seconds, data = timed(write, image)
            encode[name].append(seconds)
            kb[name].append(len(data) / 1024)
            path = folder / f"{n}_{name}.png"
            path.write_bytes(data)
            seconds, pixels = timed(readers[name], path)
            decode[name].append(seconds)
            assert np.array_equal(pixels, image), "lossless"
        seconds, pixels = timed(read_fast_cumsum, folder / f"{n}_fast.png")
        decode["fast_cumsum"].append(seconds)
        assert np.array_equal(pixels, image), "lossless"
    ms = {
        f"{what}_{name}": 1000 * statistics.median(v[name])
        for what, v in (("encode", encode), ("decode", decode))
        for name in v
    }
    return {
        "images": len(encode["fast"]),
        **{f"{key}_ms": round(value, 2) for key, value in ms.items()},
        "kb_pillow": round(statistics.fmean(kb["pillow"]), 1),
        "kb_fast": round(statistics.fmean(kb["fast"]), 1),
        "kb_fast_window15": round(statistics.fmean(kb["fast_window15"]), 1),
        "encode_pillow_over_fast": round(ms["encode_pillow"] / ms["encode_fast"], 2),
        "decode_pillow_over_fast": round(ms["decode_pillow"] / ms["decode_fast"], 2),
        "encode_window15_over_window10": round(ms["encode_fast_window15"] / ms["encode_fast"], 2),
        "decode_cumsum_over_banded": round(ms["decode_fast_cumsum"] / ms["decode_fast"], 2),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--sizes", default="512,1024")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(x) for x in args.sizes.split(",")):
            print(json.dumps({f"{size}px": measure(args.pairs, size, Path(tmp))}), flush=True)
