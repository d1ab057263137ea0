"""A run directory written by hand for the report's tests: what a later version's stages could leave
(a score, a box score, a record field and a side table this code does not know), records without
pixels, an image gone missing, ground truth, and a last line cut short by a kill."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

RECIPE = {
    "seed": 5,
    "source": {"type": "captions", "path": "/nowhere/captions.txt"},
    "models": {
        "clip": {
            "role": "embedder",
            "id": "openai/clip-vit-base-patch32",
            "revision": "abc123",
            "device": "cuda",
        }
    },
    "stages": [
        {
            "pair_filter": {
                "method": "clip",
                "embedder": "clip",
                "clip_similarity_min": 0.8,
                "clip_similarity_max": None,
            }
        },
        {"future": {"method": "new", "wobble_lt": 0.25, "flag": True}},
    ],
}


def region(box: list[float], difference: str, **extra: Any) -> dict[str, Any]:
    return {
        "box": box,
        "source": "diff",
        "scores": {"area": 0.05, "future_box_score": 0.5},
        "captions": {"a": "a cat", "b": "a dog"},
        "difference": difference,
        "rejected_by": None,
        "reason": None,
        **extra,
    }


def record(i: int, **fields: Any) -> dict[str, Any]:
    base = {
        "schema_version": 1,
        "id": f"{i:04d}abcdef01",
        "source_index": i,
        "seed": i,
        "child_index": [],
        "kind": "replacement",
        "caption_a": "a cat on a bench",
        "caption_b": "a dog on a bench",
        "edit": {"old": "cat", "new": "dog"},
        "images": {},
        "aux": {},
        "scores": {"pair_filter.clip_similarity": 0.8 + i / 100, "future.wobble": i / 10},
        "generation": {},
        "regions": [],
        "truth": [],
        "status": "kept",
        "rejected_by": None,
        "reason": None,
    }
    return {**base, **fields}


def write_hand_run(root: Path, kept: int = 6) -> list[dict[str, Any]]:
    """`kept` kept records with images (one image later deleted), and three rejected ones."""
    root.mkdir(parents=True, exist_ok=True)
    records = []
    rng = np.random.default_rng(0)
    for i in range(kept):
        images = {}
        for name in "ab":
            rel = f"images/{i:02d}/{i}_{name}.png"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(root / rel)
            images[name] = rel
        boxes = [region([4.0, 4.0, 20.0, 20.0], f"The cat became a dog, number {i}.")]
        if i % 2:
            boxes.append(
                region(
                    [30.0, 10.0, 60.0, 40.0], "A second change.", rejected_by="describe", reason="area_min: x"
                )
            )
        records.append(
            record(
                i,
                images=images,
                regions=boxes,
                truth=[{"box": [4.0, 4.0, 21.0, 21.0], "role": "changed"}],
                later_field=[1, 2],
            )
        )
    records.append(
        record(kept, status="rejected", rejected_by="source", reason="not_text: caption 3", scores={})
    )
    records.append(
        record(
            kept + 1, status="rejected", rejected_by="pair_filter", reason="clip_similarity_min: 0.1 < 0.8"
        )
    )
    records.append(
        record(
            kept + 2,
            status="rejected",
            rejected_by="future",
            reason="wobble_lt: 0.9 >= 0.25",
            kind="distractor",
        )
    )
    (root / "images/00/0_b.png").unlink()  # an image gone missing: the report says so, it does not crash
    text = "".join(json.dumps(r) + "\n" for r in records) + '{"id": "cut short by a ki'
    (root / "records.jsonl").write_text(text)
    stages = [
        {
            "stage": "source",
            "in": kept + 3,
            "kept": kept + 2,
            "rejected": {"not_text": 1},
            "computed": kept + 3,
            "seconds": 0.5,
        },
        {
            "stage": "pair_filter",
            "in": kept + 2,
            "kept": kept + 1,
            "rejected": {"clip_similarity_min": 1},
            "computed": kept + 2,
            "seconds": 2.0,
        },
        {
            "stage": "future",
            "in": kept + 1,
            "kept": kept,
            "rejected": {"wobble_lt": 1},
            "computed": kept + 1,
            "seconds": 1.0,
        },
    ]
    stats = {
        "records": kept + 3,
        "kept": kept,
        "rejected": 3,
        "pending": 0,
        "complete": True,
        "seconds": 3.5,
        "stages": stages,
    }
    (root / "stats.json").write_text(json.dumps(stats))
    meta = {
        "imgdiff": "9.9",
        "seed": 5,
        "shard": None,
        "limit": None,
        "recipe": RECIPE,
        "versions": {"python": "3"},
    }
    (root / "run.json").write_text(json.dumps(meta))
    (root / "stages/future").mkdir(parents=True)
    table = pa.table(
        {
            "id": ["x", "y", "z"],
            "x1": [1.0, 2.0, 3.0],
            "jitter": [0.1, 0.2, 0.3],
            "kept": [True, False, True],
            "reason": [None, "jitter_max: 0.2", None],
        }
    )
    pq.write_table(table, root / "stages/future/things.parquet")
    (root / "logs").mkdir()
    (root / "logs/run-00001.log").write_text(
        "2026-03-01 10:00:00,000 INFO run\n2026-03-01 10:05:30,000 INFO finished\n"
    )
    return records
