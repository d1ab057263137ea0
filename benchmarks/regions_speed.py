"""Milliseconds per pair of `regions`/`semantic` on a folder of pairs, as the reference is timed.

    python benchmarks/regions_speed.py [--bench ../shared/data/regions-bench] [--threads 2]
    python benchmarks/regions_speed.py --full [--device cuda]

Each pair goes through the stage on its own (a batch of one: read both images, FastSAM on both,
the pixel difference, crops, CLIP, BLIP, decide), timed from reading the files to the decision, the
first pair of each size excluded (warm-up), `--threads` torch threads. Thresholds are wide open and
matching is on (`match_rule: any` with no bound), so every sub-step runs for every candidate.
Sizes: the 1024 px pairs at imgsz 1024, the 512 px pairs at imgsz 512. Also timed: all pairs of a
size in one batch.
Prints one JSON object: per size and candidate sources, mean and median ms per pair and candidate
boxes per pair.

By default the models are the folder's `models/` (tiny random weights: CLIP, BLIP ITM, FastSAM).
`--full` builds full-size architectures with random weights instead (CLIP ViT-B/32, BLIP ITM large,
FastSAM-x = YOLOv8x-seg with one class), float16 on the GPU: same FLOPs as the real models.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from imgdiff.models import ModelEntry, ModelPool
from imgdiff.record import Edit, Record
from imgdiff.stages.regions.semantic import SemanticRegions
from imgdiff.store import ImageLoader

sys.path.insert(0, str(Path(__file__).parent))
OPEN = {  # every sub-step runs: matching on, nothing dropped before NMS
    "preset": "paper",
    "crop_similarity_lt": None,
    "match_rule": "any",
    "match_above": None,
    "nms_iou": 0.5,
    "max_regions": 10,
}
SOURCES = {"segmenter": ["segmenter"], "segmenter+diff": ["segmenter", "diff"]}


def pairs_of(bench: Path) -> dict[int, list[dict[str, Any]]]:
    """The folder's pairs by image size (1024 px first)."""
    by_size: dict[int, list[dict[str, Any]]] = {}
    for line in (bench / "pairs.jsonl").read_text().splitlines():
        item = json.loads(line)
        with Image.open(bench / item["image_a"]) as image:
            by_size.setdefault(max(image.size), []).append(item)
    return dict(sorted(by_size.items(), reverse=True))


def record_of(bench: Path, index: int, item: dict[str, Any]) -> Record:
    """A record as the `pairs` source makes it, its images decoded now (part of the timed work)."""
    images = {}
    for name in "ab":
        with Image.open(bench / item[f"image_{name}"]) as image:
            images[name] = np.asarray(image.convert("RGB"))
    edit = item.get("edit")
    return Record(
        id=f"pair{index:03d}",
        source_index=index,
        seed=index,
        caption_a=item.get("caption_a", ""),
        caption_b=item.get("caption_b", ""),
        edit=Edit(**edit) if edit else None,
        artifacts=images,
    )


def time_size(
    bench: Path, items: list[dict[str, Any]], pool: ModelPool, sources: list[str], threads: int
) -> dict:
    import torch

    stage = SemanticRegions(
        SemanticRegions.resolve_settings(
            {**OPEN, "embedder": "clip", "matcher": "blip", "segmenter": "fastsam", "candidates": sources},
            "bench",
        )
    )
    stage.setup(pool, ImageLoader(bench))
    ms, candidates = [], []
    for index, item in enumerate(items):
        started = time.perf_counter()
        (record,) = stage([record_of(bench, index, item)])
        stage.decide(Record.from_dict(record.to_dict()))
        elapsed = (time.perf_counter() - started) * 1000
        if index == 0:
            assert torch.get_num_threads() == threads  # the FastSAM backend keeps it
            continue
        ms.append(elapsed)
        candidates.append(record.scores["regions.candidates"])
    started = time.perf_counter()
    stage([record_of(bench, index, item) for index, item in enumerate(items[1:], 1)])
    batched = (time.perf_counter() - started) * 1000 / (len(items) - 1)
    return {
        "pairs_timed": len(ms),
        "mean_ms": round(statistics.fmean(ms), 1),
        "median_ms": round(statistics.median(ms), 1),
        "max_ms": round(max(ms), 1),
        "batched_ms_per_pair": round(batched, 1),
        "candidates_per_pair": round(statistics.fmean(candidates), 1),
    }


def checkpoints(bench: Path, full: bool, device: str, work: Path) -> dict[str, Path]:
    """Where the three models are: built under `work` with --full, else the folder's `models/`."""
    if full:
        from full_models import full_fastsam
        from vision_scoring import full_blip, full_clip

        paths = {
            "clip": full_clip(work / "clip", device),
            "blip": full_blip(work / "blip", device),
            "fastsam": full_fastsam(work / "fastsam", device),
        }
        return paths
    folder = bench / "models"
    return {"clip": folder / "clip", "blip": folder / "blip_itm", "fastsam": folder / "fastsam_tiny.pt"}


def models(paths: dict[str, Path], full: bool, device: str, imgsz: int) -> ModelPool:
    common = {"device": device, "dtype": "float16" if full else "float32"}
    return ModelPool(
        {
            "clip": ModelEntry(role="embedder", path=str(paths["clip"]), **common),
            "blip": ModelEntry(role="matcher", path=str(paths["blip"]), **common),
            "fastsam": ModelEntry(
                role="segmenter", backend="ultralytics", path=str(paths["fastsam"]), imgsz=imgsz, **common
            ),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_bench = Path(__file__).resolve().parents[2] / "shared/data/regions-bench"
    parser.add_argument("--bench", type=Path, default=default_bench)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--full", action="store_true", help="full-size architectures, float16 on the GPU")
    parser.add_argument("--device", default=None, help="default: cuda with --full, else cpu")
    parser.add_argument("--sources", nargs="+", default=list(SOURCES), choices=list(SOURCES))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if args.full else "cpu")
    results: dict[str, Any] = {
        "models": "full-size random weights" if args.full else "tiny (the folder's models/)",
        "device": torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu",
        "torch_threads": args.threads,
        "torch": torch.__version__,
    }
    with tempfile.TemporaryDirectory() as work:
        paths = checkpoints(args.bench, args.full, device, Path(work))
        for size, items in pairs_of(args.bench).items():
            pool = models(paths, args.full, device, size)
            for name in args.sources:
                results[f"imgsz{size}/{name}"] = time_size(
                    args.bench, items, pool, SOURCES[name], args.threads
                )
                print(json.dumps({f"imgsz{size}/{name}": results[f"imgsz{size}/{name}"]}), file=sys.stderr)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
