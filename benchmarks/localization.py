"""Localisation of the weight-free pipeline on sources with exact ground truth.

    python benchmarks/localization.py [--pairs 300] [--seeds 1 2 3 4 5] [--coco ../shared/data/coco-mini]

Runs the built-in `quickstart` recipe (synthetic scenes) for each seed and the `coco-copy-paste`
recipe on a COCO-format folder, scores each run with `imgdiff eval localization`, and prints one
JSON object: per-seed scores, their mean and minimum, the copy-paste scores and seconds per pair.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import imgdiff
from imgdiff.eval.localization import evaluate_dir

KEYS = ("precision", "recall", "mean_iou", "distractor_rejection")


def synthetic(pairs: int, seeds: list[int], root: Path) -> dict:
    runs = {}
    for seed in seeds:
        started = time.perf_counter()
        out = root / f"synthetic-{seed}"
        imgdiff.run("quickstart", out, limit=pairs, seed=seed, overrides=["export=[]"])
        runs[seed] = {**evaluate_dir(out), "seconds_per_pair": (time.perf_counter() - started) / pairs}
    summary = {
        f"{stat}_{key}": round(fn(runs[s][key] for s in seeds), 4)
        for key in KEYS
        for stat, fn in (("mean", statistics.fmean), ("min", min))
    }
    return {"per_seed": runs, **summary}


def copy_paste(coco: Path, root: Path) -> dict:
    started = time.perf_counter()
    out = root / "copy-paste"
    sets = [
        f"source.images={coco / 'images'}",
        f"source.instances={coco / 'instances.json'}",
        f"source.captions={coco / 'captions.json'}",
        "export=[]",
    ]
    imgdiff.run("coco-copy-paste", out, overrides=sets)
    scores = evaluate_dir(out)
    return {**scores, "seconds_per_pair": (time.perf_counter() - started) / max(scores["pairs"], 1)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument(
        "--coco", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/coco-mini"
    )
    parser.add_argument("--keep", type=Path, help="keep the runs in this folder (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        result = {"synthetic": synthetic(args.pairs, args.seeds, root)}
        if args.coco.is_dir():
            result["copy_paste"] = copy_paste(args.coco, root)
        print(json.dumps(result, indent=2))
