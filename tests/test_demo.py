"""The weight-free pipeline end to end (`imgdiff demo`): output, and byte-identical determinism
across batch sizes, shards + merge, and a kill + resume."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

import imgdiff
from conftest import tree_bytes
from imgdiff.cli import main
from imgdiff.demo import draw_pairs
from imgdiff.merge import merge
from imgdiff.render import side_by_side

OUTPUTS = ("records.jsonl", "images", "aux", "export/llava/data.json", "export/llava/images")


def _recipe(pairs: Path, batch_size: int = 16) -> str:
    return "demo", [f"source.path={pairs}", f"batch_size={batch_size}"]


def test_demo_makes_llava_data(tmp_path: Path, capsys) -> None:
    assert main(["demo", "--out", str(tmp_path / "demo"), "--pairs", "24", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "export llava" in out and "describe" in out
    data = json.loads((tmp_path / "demo" / "export" / "llava" / "data.json").read_text())
    records = {r.id: r for r in imgdiff.load_records(tmp_path / "demo")}
    assert data and all(d["conversations"][0]["value"].startswith("<image>\n") for d in data)
    first = data[0]
    record = records[first["id"].rsplit("_", 1)[0]]
    region = record.regions[int(first["id"].rsplit("_", 1)[1])]
    a, b = (np.asarray(Image.open(tmp_path / "demo" / record.images[n])) for n in "ab")
    shown = np.asarray(Image.open(tmp_path / "demo" / "export" / "llava" / first["image"]))
    assert np.array_equal(shown, side_by_side(a, b, region.box))
    assert first["conversations"][1]["value"] == region.difference
    # distractors never reach the export; every exported pair is an edit
    assert all(records[d["id"].rsplit("_", 1)[0]].kind in ("replacement", "removal") for d in data)
    # the same command again resumes: nothing is recomputed
    assert main(["demo", "--out", str(tmp_path / "demo"), "--pairs", "24", "--no-progress"]) == 0
    stats = json.loads((tmp_path / "demo" / "stats.json").read_text())
    assert sum(s["computed"] for s in stats["stages"]) == 0


def test_bytes_do_not_depend_on_batching_sharding_or_merging(tmp_path: Path) -> None:
    pairs = draw_pairs(tmp_path / "pairs", 20)
    name, sets = _recipe(pairs, batch_size=1)
    imgdiff.run(name, tmp_path / "b1", overrides=sets)
    name, sets = _recipe(pairs, batch_size=8)
    imgdiff.run(name, tmp_path / "b8", overrides=sets)
    for i in range(2):
        imgdiff.run(name, tmp_path / "sharded", overrides=sets, shard=f"{i}/2")
    merge(tmp_path / "sharded")
    one = tree_bytes(tmp_path / "b1", *OUTPUTS)
    assert len(one) > 40
    assert tree_bytes(tmp_path / "b8", *OUTPUTS) == one
    assert tree_bytes(tmp_path / "sharded", *OUTPUTS) == one
    assert (tmp_path / "sharded" / "stages" / "regions" / "candidates.parquet").read_bytes() == (
        tmp_path / "b1" / "stages" / "regions" / "candidates.parquet"
    ).read_bytes()


def test_killed_and_resumed_equals_uninterrupted(tmp_path: Path) -> None:
    pairs = draw_pairs(tmp_path / "pairs", 120)
    name, sets = _recipe(pairs, batch_size=4)
    imgdiff.run(name, tmp_path / "whole", overrides=sets)
    command = [
        sys.executable,
        "-m",
        "imgdiff",
        "run",
        name,
        "--out",
        str(tmp_path / "killed"),
        "--no-progress",
        *(x for s in sets for x in ("--set", s)),
    ]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = tmp_path / "killed" / "stages" / "describe"
    while proc.poll() is None and sum(1 for p in parts.glob("part-*") for _ in p.open()) < 4:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "records.jsonl").exists(), "the kill came too late"
    result = imgdiff.run(name, tmp_path / "killed", overrides=sets)
    assert result.stats["stages"][0]["reused"] > 0
    assert tree_bytes(tmp_path / "killed", *OUTPUTS) == tree_bytes(tmp_path / "whole", *OUTPUTS)
