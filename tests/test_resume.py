"""Resume and determinism end to end: killed, re-batched, sharded runs give identical bytes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import imgdiff
from conftest import pixel_recipe, tree_bytes
from imgdiff.errors import UsageError
from pairs_data import write_pairs


def _cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "imgdiff", *args, "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _part_lines(run_dir: Path, stage: str) -> int:
    return sum(sum(1 for _ in p.open()) for p in (run_dir / "stages" / stage).glob("part-*.jsonl"))


def _outputs(run_dir: Path) -> dict[str, bytes]:
    return tree_bytes(run_dir, "records.jsonl", "images", "aux")


def test_sigkill_part_way_then_rerun_equals_uninterrupted(tmp_path: Path) -> None:
    pairs = write_pairs(tmp_path / "pairs", 300, size=96)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(pixel_recipe(pairs, batch_size=4)))
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert _cli("run", str(recipe), "--out", str(whole)).wait(timeout=300) == 0

    proc = _cli("run", str(recipe), "--out", str(killed))
    deadline = time.monotonic() + 120
    while _part_lines(killed, "pair_filter") < 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = _part_lines(killed, "pair_filter")
    assert 3 <= done < 300, f"the kill did not land part-way ({done} of 300 done)"
    assert not (killed / "records.jsonl").exists()

    rerun = _cli("run", str(recipe), "--out", str(killed))
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    stats = json.loads((killed / "stats.json").read_text())
    assert stats["stages"][1]["reused"] >= 3  # finished work was not redone
    assert _outputs(killed) == _outputs(whole)


def test_batch_size_does_not_change_bytes(tmp_path: Path, pairs_file: Path) -> None:
    imgdiff.run(pixel_recipe(pairs_file, batch_size=1), tmp_path / "b1")
    imgdiff.run(pixel_recipe(pairs_file, batch_size=8), tmp_path / "b8")
    assert _outputs(tmp_path / "b1") == _outputs(tmp_path / "b8")


def test_sigterm_finishes_the_batch_in_hand_and_resumes(tmp_path: Path) -> None:
    pairs = write_pairs(tmp_path / "pairs", 200, size=96)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(pixel_recipe(pairs, batch_size=2)))
    run_dir = tmp_path / "run"
    proc = _cli("run", str(recipe), "--out", str(run_dir))
    while _part_lines(run_dir, "pair_filter") < 2 and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "run the same command again" in err
    records = (run_dir / "records.jsonl").read_text().splitlines()
    assert 0 < len(records) < 200 and len(records) % 2 == 0  # whole batches only
    assert _cli("run", str(recipe), "--out", str(run_dir)).wait(timeout=300) == 0
    assert len((run_dir / "records.jsonl").read_text().splitlines()) == 200


def test_shards_cover_the_run_and_write_their_own_folders(tmp_path: Path, pairs_file: Path) -> None:
    imgdiff.run(pixel_recipe(pairs_file), tmp_path / "one")
    whole = {r.id: r.to_dict() for r in imgdiff.load_records(tmp_path / "one")}
    merged = {}
    for i in range(2):
        imgdiff.run(pixel_recipe(pairs_file), tmp_path / "sharded", shard=f"{i}/2")
        part = imgdiff.load_records(tmp_path / "sharded" / "shards" / f"{i}-of-2")
        assert all(r.source_index % 2 == i for r in part)
        merged.update({r.id: r.to_dict() for r in part})
    assert merged == whole


def test_changed_seed_refuses_to_resume_without_fresh(tmp_path: Path, pairs_file: Path) -> None:
    imgdiff.run(pixel_recipe(pairs_file), tmp_path / "run")
    with pytest.raises(UsageError, match=r"the seed changed \(0 -> 5\); pass --fresh"):
        imgdiff.run(pixel_recipe(pairs_file), tmp_path / "run", seed=5)
    result = imgdiff.run(pixel_recipe(pairs_file), tmp_path / "run", seed=5, fresh=True)
    assert result.stats["stages"][0]["reused"] == 0
    assert json.loads((tmp_path / "run" / "run.json").read_text())["seed"] == 5


def test_changed_source_refuses_to_resume(tmp_path: Path, pairs_file: Path) -> None:
    imgdiff.run(pixel_recipe(pairs_file), tmp_path / "run")
    with pairs_file.open("a") as handle:
        handle.write('{"image_a": "0000_a.png", "image_b": "0000_b.png"}\n')
    with pytest.raises(UsageError, match="the source changed"):
        imgdiff.run(pixel_recipe(pairs_file), tmp_path / "run")


def test_changed_shard_spec_refuses_to_resume(tmp_path: Path, pairs_file: Path) -> None:
    run_dir = tmp_path / "run"
    imgdiff.run(pixel_recipe(pairs_file), run_dir, shard="0/2")
    shard_dir = run_dir / "shards" / "0-of-2"
    with pytest.raises(UsageError, match="the shard spec changed"):
        imgdiff.run(pixel_recipe(pairs_file), shard_dir)


def test_limit_extends_and_never_shrinks_work(tmp_path: Path, pairs_file: Path) -> None:
    run_dir = tmp_path / "run"
    first = imgdiff.run(pixel_recipe(pairs_file), run_dir, limit=10)
    assert first.stats["records"] == 10
    more = imgdiff.run(pixel_recipe(pairs_file), run_dir, limit=16)
    assert more.stats["stages"][0]["reused"] == 10 and more.stats["stages"][0]["computed"] == 6
    fewer = imgdiff.run(pixel_recipe(pairs_file), run_dir, limit=4)
    assert fewer.stats["stages"][0]["computed"] == 0 and fewer.stats["records"] == 4
    assert [r.source_index for r in imgdiff.load_records(run_dir)] == [0, 1, 2, 3]


def test_changed_score_setting_redoes_that_stage_only(tmp_path: Path, pairs_file: Path) -> None:
    run_dir = tmp_path / "run"
    imgdiff.run(pixel_recipe(pairs_file), run_dir)
    again = imgdiff.run(pixel_recipe(pairs_file), run_dir, overrides=["pair_filter.size=32"])
    source, pair_filter = again.stats["stages"]
    assert source["computed"] == 0 and pair_filter["computed"] == 24


def test_truncated_part_line_is_redone(tmp_path: Path, pairs_file: Path) -> None:
    run_dir = tmp_path / "run"
    imgdiff.run(pixel_recipe(pairs_file), run_dir)
    whole = _outputs(run_dir)
    part = next((run_dir / "stages" / "pair_filter").glob("part-*.jsonl"))
    text = part.read_text()
    part.write_text(text[: len(text) - 40])  # a write cut short by a kill
    (run_dir / "records.jsonl").unlink()
    again = imgdiff.run(pixel_recipe(pairs_file), run_dir)
    assert again.stats["stages"][1]["computed"] == 1  # only the record of the cut line
    assert _outputs(run_dir) == whole


def test_sigint_twice_is_safe(tmp_path: Path) -> None:
    pairs = write_pairs(tmp_path / "pairs", 120, size=96)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(pixel_recipe(pairs, batch_size=2)))
    proc = _cli("run", str(recipe), "--out", str(tmp_path / "run"))
    while _part_lines(tmp_path / "run", "source") < 1 and proc.poll() is None:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGINT)
    proc.communicate(timeout=120)
    assert proc.returncode in (130, 1)
    assert _cli("run", str(recipe), "--out", str(tmp_path / "run")).wait(timeout=300) == 0


def test_image_format_is_part_of_the_source_step(tmp_path: Path, pairs_file: Path) -> None:
    run_dir = tmp_path / "run"
    imgdiff.run(pixel_recipe(pairs_file), run_dir)
    again = imgdiff.run(pixel_recipe(pairs_file), run_dir, overrides=["image_format=webp"])
    assert again.stats["stages"][0]["computed"] == 24
    assert all(r.images["a"].endswith(".webp") for r in imgdiff.load_records(run_dir) if r.images)


def test_a_finished_run_sets_up_no_stage(tmp_path: Path, pairs_file: Path, monkeypatch) -> None:
    from imgdiff.stages.pair_filter.pixel import PixelPairFilter

    imgdiff.run(pixel_recipe(pairs_file), tmp_path / "run")
    setups = []
    monkeypatch.setattr(PixelPairFilter, "setup", lambda self, models, images: setups.append(1))
    imgdiff.run(pixel_recipe(pairs_file), tmp_path / "run")
    imgdiff.rethreshold(tmp_path / "run", ["pair_filter.similarity_min=0.5"])
    assert setups == []
