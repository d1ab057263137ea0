"""Demo pairs per second: `imgdiff demo` end to end (draw, filter, regions, describe, export).

    python benchmarks/demo_speed.py [--pairs 100] [--repeats 3]

Each repeat runs the demo into a fresh temporary directory in this process and times the whole
command; prints min/median/max pairs per second over the repeats as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from imgdiff.cli import main


def measure(pairs: int, repeats: int) -> dict[str, float | int]:
    rates = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            code = main(["demo", "--out", str(Path(tmp) / "demo"), "--pairs", str(pairs), "--no-progress"])
            elapsed = time.perf_counter() - started
            if code != 0:
                raise SystemExit(f"demo failed with exit code {code}")
            rates.append(pairs / elapsed)
    return {
        "pairs": pairs,
        "repeats": repeats,
        "pairs_per_s_min": round(min(rates), 2),
        "pairs_per_s_median": round(statistics.median(rates), 2),
        "pairs_per_s_max": round(max(rates), 2),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(measure(args.pairs, args.repeats)))
