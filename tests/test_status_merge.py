"""status and --dry-run say what a rerun will do; merge joins shards into one run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import imgdiff
from conftest import pixel_recipe, tree_bytes
from imgdiff.cli import main
from imgdiff.errors import UsageError
from imgdiff.merge import merge
from imgdiff.survey import Survey, status
from pairs_data import write_pairs


def _rows(survey: Survey) -> dict[str, dict]:
    return {r["step"]: r for r in survey.rows()}


def test_status_after_a_kill_says_what_the_rerun_does(tmp_path: Path) -> None:
    pairs = write_pairs(tmp_path / "pairs", 240, size=96)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(pixel_recipe(pairs, batch_size=4)))
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "imgdiff", "run", str(recipe), "--out", str(run_dir), "--no-progress"]
    proc = subprocess.Popen(command, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    part = run_dir / "stages" / "source"
    while proc.poll() is None and sum(1 for p in part.glob("part-*") for _ in p.open()) < 8:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    before = _rows(status(run_dir))
    assert 0 < before["source"]["to_compute"] < 240
    dry = imgdiff.run(recipe, run_dir, dry_run=True)
    assert _rows(dry) == before
    result = imgdiff.run(recipe, run_dir)
    source, pair_filter = result.stats["stages"]
    assert source["computed"] == before["source"]["to_compute"]
    assert source["reused"] == before["source"]["done"]
    # pair_filter computes what status listed now, plus the records the source work passed on
    assert pair_filter["computed"] == before["pair_filter"]["to_compute"] + source["computed"]
    after = _rows(status(run_dir))
    assert all(r["to_compute"] == 0 for r in after.values())


def test_status_and_dry_run_write_nothing(tmp_path: Path, pairs_file: Path, capsys) -> None:
    recipe = pixel_recipe(pairs_file)
    survey = imgdiff.run(recipe, tmp_path / "new", dry_run=True)
    assert _rows(survey)["source"]["to_compute"] == 24 and not (tmp_path / "new").exists()
    imgdiff.run(recipe, tmp_path / "run")
    listing = sorted(p.relative_to(tmp_path) for p in (tmp_path / "run").rglob("*"))
    assert main(["status", str(tmp_path / "run")]) == 0
    assert "nothing to compute" in capsys.readouterr().out
    changed = imgdiff.run(recipe, tmp_path / "run", overrides=["pair_filter.size=32"], dry_run=True)
    assert _rows(changed)["pair_filter"]["to_compute"] == 24
    assert _rows(imgdiff.run(recipe, tmp_path / "run", fresh=True, dry_run=True))["source"]["done"] == 0
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "run").rglob("*")) == listing


def test_status_reports_a_refusal(tmp_path: Path, pairs_file: Path) -> None:
    imgdiff.run(pixel_recipe(pairs_file), tmp_path / "run")
    with pairs_file.open("a") as handle:
        handle.write('{"image_a": "0000_a.png", "image_b": "0000_b.png"}\n')
    assert "the source changed" in status(tmp_path / "run").blocked
    with pytest.raises(UsageError, match="not an imgdiff run"):
        status(tmp_path / "nothing")


def test_merged_shards_equal_one_run_byte_for_byte(tmp_path: Path, pairs_file: Path) -> None:
    recipe = pixel_recipe(pairs_file)
    imgdiff.run(recipe, tmp_path / "one")
    for i in range(3):
        imgdiff.run(recipe, tmp_path / "sharded", shard=f"{i}/3")
    stats = merge(tmp_path / "sharded")
    one = json.loads((tmp_path / "one" / "stats.json").read_text())
    assert (stats["records"], stats["kept"]) == (one["records"], one["kept"])
    keep = ("records.jsonl", "images", "aux")
    assert tree_bytes(tmp_path / "sharded", *keep) == tree_bytes(tmp_path / "one", *keep)
    # the merged directory is a whole run: the unsharded command resumes it without computing
    again = imgdiff.run(recipe, tmp_path / "sharded")
    assert sum(s["computed"] for s in again.stats["stages"]) == 0


def test_merge_refuses_missing_or_unfinished_shards(tmp_path: Path, pairs_file: Path) -> None:
    recipe = pixel_recipe(pairs_file)
    imgdiff.run(recipe, tmp_path / "sharded", shard="0/2")
    with pytest.raises(UsageError, match="shard\\(s\\) 1/2 missing"):
        merge(tmp_path / "sharded")
    imgdiff.run(recipe, tmp_path / "sharded", shard="1/2")
    stats_path = tmp_path / "sharded" / "shards" / "1-of-2" / "stats.json"
    stats_path.write_text(json.dumps({**json.loads(stats_path.read_text()), "complete": False}))
    with pytest.raises(UsageError, match="shard 1-of-2 is not finished"):
        merge(tmp_path / "sharded")
    with pytest.raises(UsageError, match="no shards"):
        merge(tmp_path / "elsewhere")
