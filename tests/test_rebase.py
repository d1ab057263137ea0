"""A changed per-box decision reaches every later stage: after `rethreshold` (or a resumed `run`
with the same `--set`), records, side tables and exports equal a fresh run with those settings,
whether the decision keeps fewer boxes or more."""

from __future__ import annotations

from pathlib import Path

import pytest

import imgdiff
from conftest import tree_bytes

OUTPUTS = ("records.jsonl", "stages/regions/candidates.parquet", "export")
LIMIT = 12


def _outputs(root: Path) -> dict[str, bytes]:
    files = tree_bytes(root, *OUTPUTS)
    assert "records.jsonl" in files and any(k.startswith("export/") for k in files)
    return files


def _fresh(tmp_path: Path, name: str, sets: list[str]) -> dict[str, bytes]:
    imgdiff.run("quickstart", tmp_path / name, limit=LIMIT, overrides=sets)
    return _outputs(tmp_path / name)


@pytest.mark.parametrize(
    "setting",
    ["regions.mean_diff_min=40", "regions.mean_diff_min=4"],
    ids=["tighter", "looser"],
)
def test_rethreshold_regions_equals_a_fresh_run(tmp_path: Path, setting: str) -> None:
    run_dir = tmp_path / "run"
    imgdiff.run("quickstart", run_dir, limit=LIMIT)
    before = _outputs(run_dir)
    imgdiff.rethreshold(run_dir, [setting])
    # Records admitted by a looser decision that the later stages never saw stay pending: the same
    # run command then does them.
    imgdiff.run("quickstart", run_dir, limit=LIMIT)
    expected = _fresh(tmp_path, "fresh", [setting])
    assert _outputs(run_dir) == expected
    assert before != expected  # the setting does change the data, so the check can fail


def test_tightening_is_complete_after_rethreshold_alone(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    imgdiff.run("quickstart", run_dir, limit=LIMIT)
    result = imgdiff.rethreshold(run_dir, ["regions.max_regions=1"])
    assert not result.stats["pending"]
    assert _outputs(run_dir) == _fresh(tmp_path, "fresh", ["regions.max_regions=1"])


def test_resumed_run_with_the_set_equals_a_fresh_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    imgdiff.run("quickstart", run_dir, limit=LIMIT)
    imgdiff.run("quickstart", run_dir, limit=LIMIT, overrides=["regions.mean_diff_min=40"])
    assert _outputs(run_dir) == _fresh(tmp_path, "fresh", ["regions.mean_diff_min=40"])
