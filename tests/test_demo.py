"""The weight-free pipeline end to end (`imgdiff demo` = the quickstart recipe): output, and
byte-identical determinism across batch sizes, shards + merge, and a kill + resume."""

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
from imgdiff.merge import merge
from imgdiff.render import side_by_side

OUTPUTS = ("records.jsonl", "images", "aux", "export/llava/data.json", "export/llava/images")
SMALL = ["source.size=128"]  # small scenes keep these tests fast; the pipeline is the same


def test_demo_makes_llava_data(tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--limit", "12", "--no-progress"]) == 0
    assert "export llava" in capsys.readouterr().out
    data = json.loads((out / "export" / "llava" / "data.json").read_text())
    records = {r.id: r for r in imgdiff.load_records(out)}
    assert len(records) == 12 and data
    assert all(d["conversations"][0]["value"].startswith("<image>\n") for d in data)
    first = data[0]
    record_id, k = first["id"].rsplit("_", 1)
    record, region = records[record_id], records[record_id].regions[int(k)]
    a, b = (np.asarray(Image.open(out / record.images[n])) for n in "ab")
    shown = np.asarray(Image.open(out / "export" / "llava" / first["image"]))
    assert np.array_equal(shown, side_by_side(a, b, region.box))
    assert first["conversations"][1]["value"] == region.difference
    assert all(records[d["id"].rsplit("_", 1)[0]].kind in ("replacement", "removal") for d in data)
    # the same command again resumes: nothing is recomputed
    assert main(["demo", "--out", str(out), "--limit", "12", "--no-progress"]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert sum(s["computed"] for s in stats["stages"]) == 0


def test_bytes_do_not_depend_on_batching_sharding_or_merging(tmp_path: Path) -> None:
    imgdiff.run("quickstart", tmp_path / "b1", limit=24, overrides=[*SMALL, "batch_size=1"])
    imgdiff.run("quickstart", tmp_path / "b8", limit=24, overrides=[*SMALL, "batch_size=8"])
    for i in range(2):
        imgdiff.run(
            "quickstart", tmp_path / "sharded", limit=24, overrides=[*SMALL, "batch_size=8"], shard=f"{i}/2"
        )
    merge(tmp_path / "sharded")
    one = tree_bytes(tmp_path / "b1", *OUTPUTS)
    assert len(one) > 40
    assert tree_bytes(tmp_path / "b8", *OUTPUTS) == one
    assert tree_bytes(tmp_path / "sharded", *OUTPUTS) == one
    table = ("stages", "regions", "candidates.parquet")
    assert (tmp_path / "sharded").joinpath(*table).read_bytes() == (tmp_path / "b1").joinpath(
        *table
    ).read_bytes()


def test_killed_and_resumed_equals_uninterrupted(tmp_path: Path) -> None:
    sets = [*SMALL, "batch_size=4"]
    imgdiff.run("quickstart", tmp_path / "whole", limit=160, overrides=sets)
    command = [
        sys.executable,
        "-m",
        "imgdiff",
        "run",
        "quickstart",
        "--out",
        str(tmp_path / "killed"),
        "--limit",
        "160",
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
    result = imgdiff.run("quickstart", tmp_path / "killed", limit=160, overrides=sets)
    assert result.stats["stages"][0]["reused"] > 0
    assert tree_bytes(tmp_path / "killed", *OUTPUTS) == tree_bytes(tmp_path / "whole", *OUTPUTS)


def test_own_pairs_through_the_pairs_recipe(tmp_path: Path, pairs_file: Path) -> None:
    result = imgdiff.run("pairs", tmp_path / "run", overrides=[f"source.path={pairs_file}"])
    assert [s["stage"] for s in result.stats["stages"]] == ["source", "pair_filter", "regions", "describe"]
    assert result.exports["llava"]["samples"] > 0
