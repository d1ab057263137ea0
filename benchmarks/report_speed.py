"""How long `imgdiff report` takes on big runs, and how big its folder is.

The runs are synthetic and weight-free: records.jsonl, stats.json, run.json, a log and a
`regions/candidates` side table written directly (running the pipeline 20K times would measure the
pipeline, not the report). Records look like the paper's pipeline's: lexicon objects replaced,
pair-filter, regions and describe scores, 1-3 boxes with captions, ground truth on a share,
rejections at every stage with their reason codes, and one score no stage here knows. Images are a
pool of 64 pairs at 512 px that the records share (the report opens only the gallery's images and
every kept record's header).

    PYTHONPATH=src python benchmarks/report_speed.py --sizes 2000 20000
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from imgdiff.report import build_report

OBJECTS = ["cat", "dog", "car", "bus", "apple", "banana", "chair", "bench", "cup", "horse", "truck", "bird"]
STAGES = ["source", "edit", "generate", "pair_filter", "regions", "describe"]
REASONS = {
    "edit": ["no_change", "same_object"],
    "pair_filter": ["similarity_min", "changed_area_min", "changed_area_max"],
    "regions": ["no_regions"],
    "describe": ["no_regions"],
}
RECIPE = {
    "seed": 0,
    "source": {"type": "captions", "path": "/data/captions.json"},
    "models": {"sdxl": {"role": "diffusion", "backend": "diffusers", "id": "sdxl-base", "device": "cuda"}},
    "stages": [
        {"edit": {"method": "lexicon", "length_ratio_min": 0.5, "length_ratio_max": 2.0}},
        {"generate": {"method": "p2p", "diffusion": "sdxl"}},
        {"pair_filter": {"method": "pixel", "similarity_min": 0.6, "changed_area_min": 0.002}},
        {"regions": {"method": "pixel", "area_min": 0.002, "mean_diff_min": 12.0}},
        {"describe": {"method": "template", "area_min": 0.0025, "max_regions": 5}},
    ],
}


def synthesize_run(root: Path, count: int, pool: int = 64, seed: int = 0) -> None:
    rng = random.Random(seed)
    images = _image_pool(root, pool, np.random.default_rng(seed))
    funnel = {s: {"in": 0, "kept": 0, "rejected": Counter()} for s in STAGES}
    candidates: list[dict] = []
    with (root / "records.jsonl").open("w") as out:
        for i in range(count):
            record, reached, rejected_at, rows = _record(i, rng, images[i % pool])
            for stage in reached:
                funnel[stage]["in"] += 1
                if stage == rejected_at:
                    funnel[stage]["rejected"][record["reason"].split(":")[0]] += 1
                else:
                    funnel[stage]["kept"] += 1
            candidates += rows
            out.write(json.dumps(record) + "\n")
    pq.write_table(pa.Table.from_pylist(candidates), _mkdir(root / "stages/regions") / "candidates.parquet")
    kept = funnel["describe"]["kept"]
    stages = [
        {
            "stage": s,
            "in": f["in"],
            "out": f["in"],
            "kept": f["kept"],
            "rejected": dict(f["rejected"]),
            "reused": 0,
            "computed": f["in"],
            "pending": 0,
            "seconds": round(f["in"] * 0.01, 3),
        }
        for s, f in funnel.items()
    ]
    stats = {
        "records": count,
        "kept": kept,
        "rejected": count - kept,
        "pending": 0,
        "complete": True,
        "pending_by_stage": {},
        "seconds": 1.0,
        "stages": stages,
    }
    (root / "stats.json").write_text(json.dumps(stats, indent=2))
    meta = {"imgdiff": "bench", "seed": 0, "shard": None, "limit": None, "recipe": RECIPE, "versions": {}}
    (root / "run.json").write_text(json.dumps(meta, indent=2))
    (_mkdir(root / "logs") / "run-00001.log").write_text("2026-01-01 00:00:00,000 INFO run\n")


def _record(i: int, rng: random.Random, pair: tuple[str, str]) -> tuple[dict, list[str], str | None, list]:
    old, new = rng.sample(OBJECTS, 2)
    caption = f"a {old} {rng.choice(['on a table', 'next to a tree', 'in a street', 'by the window'])}"
    rid = f"{i:012x}"
    record = {
        "schema_version": 1,
        "id": rid,
        "source_index": i,
        "seed": i,
        "child_index": [],
        "kind": "replacement",
        "caption_a": caption,
        "caption_b": caption.replace(old, new),
        "edit": {"old": old, "new": new},
        "images": {"a": pair[0], "b": pair[1]},
        "aux": {},
        "scores": {},
        "generation": {},
        "regions": [],
        "truth": [],
        "status": "kept",
        "rejected_by": None,
        "reason": None,
        "future_field": {"a later stage": "writes this"},  # the report must pass over what it does not know
    }
    scores = record["scores"]
    scores["edit.length_ratio"] = rng.uniform(0.7, 1.4)
    scores["pair_filter.similarity"] = rng.betavariate(8, 1.5)
    scores["pair_filter.changed_area"] = rng.expovariate(25)
    scores["pair_filter.future_score"] = rng.gauss(0, 1)
    rejected_at = rng.choices([None, "edit", "pair_filter", "regions", "describe"], [60, 5, 25, 5, 5])[0]
    reached = STAGES[: STAGES.index(rejected_at) + 1] if rejected_at else STAGES
    rows = []
    if "regions" in reached:
        for k in range(rng.randint(1, 3)):
            x, y, w, h = rng.uniform(0, 380), rng.uniform(0, 380), rng.uniform(10, 130), rng.uniform(10, 130)
            region_scores = {"area": w * h / 512**2, "mean_diff": rng.uniform(5, 120)}
            rows.append(
                {
                    "id": rid,
                    "candidate": k,
                    "x1": x,
                    "y1": y,
                    "x2": x + w,
                    "y2": y + h,
                    **region_scores,
                    "kept": True,
                    "reason": None,
                }
            )
            record["regions"].append(
                {
                    "box": [x, y, x + w, y + h],
                    "source": "diff",
                    "scores": region_scores,
                    "captions": {"a": f"a {old}", "b": f"a {new}"},
                    "difference": f"The {old} on the {rng.choice(['left', 'right'])} became a {new}.",
                    "rejected_by": None,
                    "reason": None,
                }
            )
        scores["regions.candidates"] = float(len(rows))
    if rng.random() < 0.3:
        record["truth"] = [
            {"box": record["regions"][0]["box"] if record["regions"] else [0, 0, 9, 9], "role": "changed"}
        ]
    if rejected_at:
        record.update(
            status="rejected",
            rejected_by=rejected_at,
            reason=f"{rng.choice(REASONS[rejected_at])}: synthetic",
        )
    return record, reached, rejected_at, rows


def _image_pool(root: Path, pool: int, rng: np.random.Generator) -> list[tuple[str, str]]:
    pairs = []
    for k in range(pool):
        a = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8).repeat(64, 0).repeat(64, 1)
        b = a.copy()
        b[100:200, 150:260] = rng.integers(0, 255, 3, dtype=np.uint8)
        rel = [f"images/{k:02x}/pool{k}_{n}.png" for n in "ab"]
        for image, path in zip((a, b), rel, strict=True):
            Image.fromarray(image).save(_mkdir((root / path).parent) / Path(path).name)
        pairs.append((rel[0], rel[1]))
    return pairs


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--gallery", type=int, default=24)
    args = parser.parse_args()
    for size in args.sizes:
        root = Path(tempfile.mkdtemp(prefix=f"report-bench-{size}-"))
        try:
            synthesize_run(root, size)
            started = time.perf_counter()
            index = build_report(root, gallery=args.gallery)
            seconds = time.perf_counter() - started
            megabytes = folder_bytes(index.parent) / 1e6
            print(
                json.dumps({"records": size, "seconds": round(seconds, 2), "report_mb": round(megabytes, 2)})
            )
        finally:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
