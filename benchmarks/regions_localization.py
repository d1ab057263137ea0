"""Localisation of `regions`/`semantic` beside `regions`/`pixel`, on sources with exact truth.

    python benchmarks/regions_localization.py [--pairs 100] [--seed 1] [--coco ../shared/data/coco-mini]
        [--models DIR] [--imgsz 512] [--sweep pixel_diff_min=0,4,6,8,10]

For each source (synthetic scenes, `--pairs` of them with `--seed`; copy-paste edits of the COCO
folder) runs the pixel pair filter and then one `regions` configuration: `pixel`; `semantic` with
candidates `diff`; `semantic` with `diff` and `segmenter`. The semantic runs use the `imgdiff`
preset with `match_rule: none` and `crop_similarity_lt` open: the models are tiny random-weight
checkpoints (`--models`: a folder with `clip`, `blip_itm`, `fastsam_tiny.pt`), so their scores are
noise and only the candidates' geometry and the pixel thresholds are exercised. Each run is
scored with `imgdiff eval localization`. `--sweep` re-decides the semantic runs from their stored
scores (`imgdiff rethreshold`, no model) at each value of one decision setting.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

import imgdiff
from imgdiff.eval.localization import evaluate_dir
from imgdiff.recipe import builtin_recipes

SHARED = Path(__file__).resolve().parents[2] / "shared/data"
KEYS = ("precision", "recall", "mean_iou", "pairs", "predicted")


def regions_configs() -> dict[str, dict[str, Any]]:
    semantic = {
        "method": "semantic",
        "preset": "imgdiff",
        "embedder": "clip",
        "matcher": "blip",
        "segmenter": "fastsam",
        "match_rule": "none",
        "crop_similarity_lt": None,
    }
    return {
        "pixel": {"method": "pixel"},
        "semantic diff": {**semantic, "candidates": ["diff"]},
        "semantic diff+segmenter": {**semantic, "candidates": ["diff", "segmenter"]},
    }


def recipe(source: str, regions: dict[str, Any], models: Path, imgsz: int) -> dict[str, Any]:
    raw = yaml.safe_load(builtin_recipes()[source])
    raw["stages"] = [{"pair_filter": {"method": "pixel"}}, {"regions": regions}]
    raw["export"] = []
    if regions["method"] == "semantic":
        raw["models"] = {
            "clip": {"role": "embedder", "path": str(models / "clip")},
            "blip": {"role": "matcher", "path": str(models / "blip_itm")},
            "fastsam": {
                "role": "segmenter",
                "backend": "ultralytics",
                "path": str(models / "fastsam_tiny.pt"),
                "imgsz": imgsz,
            },
        }
    return raw


def scores(out: Path) -> dict[str, Any]:
    result = evaluate_dir(out)
    return {key: round(result[key], 4) if isinstance(result[key], float) else result[key] for key in KEYS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--coco", type=Path, default=SHARED / "coco-mini")
    parser.add_argument("--models", type=Path, default=SHARED / "regions-bench/models")
    parser.add_argument("--imgsz", type=int, default=512)
    parser.add_argument("--sweep", help="SETTING=v1,v2,...: re-decide the semantic runs at each value")
    parser.add_argument("--keep", type=Path, help="keep the runs in this folder")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sources = {"synthetic": ("quickstart", {"limit": args.pairs, "seed": args.seed}, [])}
    if args.coco.is_dir():
        coco = [
            f"source.{k}={args.coco / v}"
            for k, v in {"images": "images", "instances": "instances.json"}.items()
        ]
        sources["copy_paste"] = (
            "coco-copy-paste",
            {},
            [*coco, f"source.captions={args.coco / 'captions.json'}"],
        )
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        for source, (name, run_args, sets) in sources.items():
            for label, regions in regions_configs().items():
                out = root / f"{source}-{label.replace(' ', '-').replace('+', '-')}"
                started = time.perf_counter()
                imgdiff.run(
                    recipe(name, regions, args.models, args.imgsz),
                    out,
                    overrides=sets,
                    fresh=True,
                    **run_args,
                )
                entry = {**scores(out), "seconds": round(time.perf_counter() - started, 1)}
                if args.sweep and regions["method"] == "semantic":
                    setting, values = args.sweep.split("=")
                    for value in values.split(","):
                        imgdiff.rethreshold(out, [f"regions.{setting}={value}"])
                        entry[f"{setting}={value}"] = scores(out)
                results[f"{source} / {label}"] = entry
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
