"""What a kill leaves behind never blocks the next command: every run-root file is written through
`.tmp/` (swept at start), a directory with only the lock, logs and temporaries counts as empty, and
a part line cut short is cut once, not reported forever."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

import imgdiff
from conftest import pixel_recipe, tree_bytes
from imgdiff.survey import status


def test_run_root_files_are_written_through_tmp(
    tmp_path: Path, pairs_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    renames: list[tuple[Path, Path]] = []
    real_replace = os.replace

    def replace(src: str | Path, dst: str | Path) -> None:
        renames.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    run_dir = tmp_path / "run"
    imgdiff.run(pixel_recipe(pairs_file), run_dir)
    written = {dst.name for _, dst in renames}
    assert {"run.json", "records.jsonl", "stats.json"} <= written
    assert all(src.parent == run_dir / ".tmp" for src, _ in renames)


def test_a_kill_at_the_first_run_json_rename_then_the_same_command_succeeds(
    tmp_path: Path, pairs_file: Path
) -> None:
    run_dir = tmp_path / "run"
    imgdiff.run(pixel_recipe(pairs_file), tmp_path / "whole")
    # What a kill just before the rename of the first run.json leaves: the lock, the log folder,
    # the temporary (and one an earlier version left beside run.json).
    (run_dir / "logs").mkdir(parents=True)
    (run_dir / ".lock").touch()
    (run_dir / ".tmp").mkdir()
    (run_dir / ".tmp" / ".run.json.tmp-4242").write_text('{"imgdiff": "0.1", "se')
    (run_dir / ".run.json.tmp-4241").write_text('{"imgd')
    imgdiff.run(pixel_recipe(pairs_file), run_dir)
    assert tree_bytes(run_dir, "records.jsonl", "images") == tree_bytes(
        tmp_path / "whole", "records.jsonl", "images"
    )
    assert not (run_dir / ".run.json.tmp-4241").exists()
    assert not list((run_dir / ".tmp").iterdir())  # swept; the run's own temporaries all renamed


def test_a_torn_part_line_is_cut_once(
    tmp_path: Path, pairs_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run_dir = tmp_path / "run"
    imgdiff.run(pixel_recipe(pairs_file), run_dir)
    whole = tree_bytes(run_dir, "records.jsonl")
    part = sorted((run_dir / "stages" / "pair_filter").glob("part-*.jsonl"))[0]
    lines = part.read_bytes().splitlines(keepends=True)
    part.write_bytes(b"".join(lines[:-1]) + lines[-1][:40])  # the last line cut short by a kill
    with caplog.at_level(logging.WARNING, logger="imgdiff"):
        imgdiff.run(pixel_recipe(pairs_file), run_dir)
    assert sum("cut short" in m for m in caplog.messages) == 1
    assert part.read_bytes() == b"".join(lines[:-1])  # the torn line gone; its work redone elsewhere
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="imgdiff"):
        imgdiff.run(pixel_recipe(pairs_file), run_dir)
        status(run_dir)
    assert not [m for m in caplog.messages if "cut short" in m or "incomplete" in m]
    assert tree_bytes(run_dir, "records.jsonl") == whole
