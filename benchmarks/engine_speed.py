"""Demo pairs per second, local engine versus the Ray engine with 1 and 2 workers, in one run.

    python benchmarks/engine_speed.py [--pairs 96] [--cpus 2]

Starts one local Ray instance (`--cpus` CPUs, no dashboard) before timing anything, runs one small
Ray job to warm it, then runs the weight-free demo recipe (`quickstart`) into fresh temporary
directories: local, Ray with 1 worker, Ray with 2 workers. The Ray overhead per batch is
(Ray seconds - local seconds) / batches for the 1-worker run: the price of scheduling, Arrow
rows, worker processes and the decide-only finishing pass. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

from imgdiff import runner
from imgdiff.engine.ray import RayOptions


def timed(engine: str, pairs: int, workers: int = 1) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        runner.run(
            "quickstart", Path(tmp) / "run", limit=pairs, engine=engine, ray=RayOptions(workers=workers)
        )
        return time.perf_counter() - started


def measure(pairs: int, cpus: int) -> dict[str, float | int]:
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    timed("ray", 8)  # warm: worker processes and imports
    local = timed("local", pairs)
    ray1 = timed("ray", pairs, 1)
    ray2 = timed("ray", pairs, 2)
    batches = math.ceil(pairs / 16)  # the recipe's batch_size
    return {
        "pairs": pairs,
        "cpus": cpus,
        "local_pairs_per_s": round(pairs / local, 2),
        "ray_1_worker_pairs_per_s": round(pairs / ray1, 2),
        "ray_2_workers_pairs_per_s": round(pairs / ray2, 2),
        "ray_1_over_local": round(local / ray1, 3),
        "ray_2_over_local": round(local / ray2, 3),
        "ray_overhead_s_per_batch": round((ray1 - local) / batches, 3),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=96)
    parser.add_argument("--cpus", type=int, default=2)
    args = parser.parse_args()
    print(json.dumps(measure(args.pairs, args.cpus), indent=2))
