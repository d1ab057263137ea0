"""PNG zlib level 1 (what the store writes) versus the default 6: encode time and size, one run.

    python benchmarks/png_levels.py [--pairs 20] [--size 512]

Encodes quickstart-like images (synthetic scenes with noise) at both levels, interleaved, and prints
JSON: milliseconds per image, bytes per image, and the ratios level 6 / level 1.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time

import numpy as np
from PIL import Image

from imgdiff.record import Record
from imgdiff.sources.synthetic import SyntheticSource


def images(pairs: int, size: int) -> list[np.ndarray]:
    source = SyntheticSource(SyntheticSource.Settings(count=pairs, size=size))
    batch = [(Record(id=f"{i:012x}", source_index=i, seed=i), i) for i in range(pairs)]
    return [r.artifacts[n] for r in source.load(batch) if r.artifacts for n in ("a", "b")]


def encode(image: np.ndarray, level: int) -> tuple[float, int]:
    buffer = io.BytesIO()
    started = time.perf_counter()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=level)
    return time.perf_counter() - started, buffer.tell()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    results: dict[int, list[tuple[float, int]]] = {1: [], 6: []}
    for image in images(args.pairs, args.size):
        for level in (1, 6):
            results[level].append(encode(image, level))
    ms = {level: statistics.median(t for t, _ in r) * 1000 for level, r in results.items()}
    size = {level: statistics.fmean(b for _, b in r) for level, r in results.items()}
    print(
        json.dumps(
            {
                "images": len(results[1]),
                "ms_level1": round(ms[1], 2),
                "ms_level6": round(ms[6], 2),
                "kb_level1": round(size[1] / 1024, 1),
                "kb_level6": round(size[6] / 1024, 1),
                "time_6_over_1": round(ms[6] / ms[1], 2),
                "size_1_over_6": round(size[1] / size[6], 3),
            }
        )
    )
