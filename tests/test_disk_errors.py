"""What the machine refuses (a file-size limit, a full disk, a read-only directory, a deleted file)
and what a run directory may hold that this version cannot read end in one line and exit 2; the
funnel of finished work is printed, and the same command resumes identically once it is fixed."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import imgdiff
from conftest import tree_bytes
from imgdiff.cli import main
from imgdiff.store import RunStore

SRC = Path(__file__).resolve().parents[1] / "src"


def _recipe(tmp_path: Path, pairs: Path) -> Path:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"seed: 0\nbatch_size: 4\nsource: {{type: pairs, path: {pairs}}}\n"
        "stages:\n  - pair_filter: {method: pixel}\n  - regions: {method: pixel}\n"
        "  - describe: {method: template}\nexport: [llava]\n"
    )
    return recipe


def _cli(args: list[str], ulimit_kb: int | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "imgdiff", *args, "--no-progress"]
    if ulimit_kb is not None:
        command = ["bash", "-c", f'ulimit -f {ulimit_kb}; exec "$@"', "imgdiff", *command]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def _one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("imgdiff: error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def test_file_size_limit_mid_run_then_resume_identically(tmp_path: Path, pairs_file: Path) -> None:
    recipe = _recipe(tmp_path, pairs_file)
    whole = _cli(["run", str(recipe), "--out", str(tmp_path / "whole")])
    assert whole.returncode == 0, whole.stderr
    limited = _cli(["run", str(recipe), "--out", str(tmp_path / "run")], ulimit_kb=8)
    assert limited.returncode == 2
    line = _one_error_line(limited.stderr)
    assert "part-00001.jsonl: the file-size limit was reached" in line and "finished work is on disk" in line
    assert limited.stdout.splitlines()[0].startswith("stage") and "pending" in limited.stdout  # the funnel
    resumed = _cli(["run", str(recipe), "--out", str(tmp_path / "run")])
    assert resumed.returncode == 0, resumed.stderr
    kept = ("records.jsonl", "export", "stages/regions/candidates.parquet")
    assert tree_bytes(tmp_path / "run", *kept) == tree_bytes(tmp_path / "whole", *kept)


def test_disk_full_mid_run_names_the_file_and_prints_the_funnel(
    tmp_path: Path, pairs_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real_fsync = os.fsync
    syncs = []

    def fsync(fd: int) -> None:  # the 40th file or part write finds the disk full
        syncs.append(fd)
        if len(syncs) == 40:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    recipe = _recipe(tmp_path, pairs_file)
    assert main(["run", str(recipe), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    out, err = capsys.readouterr()
    line = _one_error_line(err)
    assert f"error: {tmp_path / 'run'}/" in line and ": the disk is full" in line
    assert "records:" in out and "pending" in out
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert main(["run", str(recipe), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    imgdiff.run(recipe, tmp_path / "whole")
    assert tree_bytes(tmp_path / "run", "records.jsonl") == tree_bytes(tmp_path / "whole", "records.jsonl")


def test_export_of_a_read_only_run_needs_no_lock(
    tmp_path: Path, pairs_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "run"
    imgdiff.run(_recipe(tmp_path, pairs_file), run_dir)
    real_open = Path.open

    def read_only(path: Path, mode: str = "r", *args: object, **kwargs: object) -> object:
        if path.parent == run_dir and "r" not in mode:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", read_only)
    assert main(["export", str(run_dir), "--format", "llava", "--to", str(tmp_path / "elsewhere")]) == 0
    with pytest.raises(OSError), RunStore(run_dir).locked():  # a run that works on it needs the lock
        pass


@pytest.mark.parametrize("damage", ["newer-schema", "truncated-records", "deleted-image"])
def test_damaged_run_export_is_one_line(
    tmp_path: Path, pairs_file: Path, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    imgdiff.run(_recipe(tmp_path, pairs_file), run_dir)
    records = run_dir / "records.jsonl"
    lines = records.read_text().splitlines()
    if damage == "newer-schema":
        first = json.loads(lines[0]) | {"schema_version": 99}
        records.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    elif damage == "truncated-records":
        records.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][: len(lines[-1]) // 2])
    else:
        kept = next(json.loads(line) for line in lines if json.loads(line)["status"] == "kept")
        (run_dir / kept["images"]["a"]).unlink()
    capsys.readouterr()
    assert main(["export", str(run_dir), "--format", "llava", "--to", str(tmp_path / "out")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert {"newer-schema": "newer", "truncated-records": "cut short", "deleted-image": "no such file"}[
        damage
    ] in line


def test_an_empty_source_warns_on_run_and_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    run_dir = tmp_path / "empty"
    assert main(["run", str(_recipe(tmp_path, empty)), "--out", str(run_dir), "--no-progress"]) == 0
    assert "the source gave no items" in capsys.readouterr().err
    assert main(["export", str(run_dir), "--format", "llava", "--to", str(tmp_path / "out")]) == 0
    assert "source gave no items: the export is empty" in capsys.readouterr().err


def test_disk_full_during_the_export_still_prints_the_finished_funnel(
    tmp_path: Path, pairs_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = _recipe(tmp_path, pairs_file)
    real_write_bytes = Path.write_bytes

    def write_bytes(path: Path, data: bytes) -> int:
        if "export" in path.parts:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_write_bytes(path, data)

    def open_(path: Path, mode: str = "r", *args: object, **kwargs: object) -> object:
        if "export" in path.parts and "w" in mode:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_open(path, mode, *args, **kwargs)

    real_open = Path.open
    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    monkeypatch.setattr(Path, "open", open_)
    assert main(["run", str(recipe), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    out, err = capsys.readouterr()
    assert "the disk is full" in _one_error_line(err) and "records: 24 (17 kept" in out


def test_a_part_written_by_a_newer_imgdiff_is_one_line(
    tmp_path: Path, pairs_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = _recipe(tmp_path, pairs_file)
    run_dir = tmp_path / "run"
    imgdiff.run(recipe, run_dir)
    part = next((run_dir / "stages" / "regions").glob("part-*.jsonl"))
    entries = [json.loads(line) for line in part.read_text().splitlines()]
    entries[0]["out"][0]["schema_version"] = 99
    part.write_text("".join(json.dumps(e) + "\n" for e in entries))
    capsys.readouterr()
    assert main(["run", str(recipe), "--out", str(run_dir), "--no-progress"]) == 2
    assert "schema_version 99 is newer" in _one_error_line(capsys.readouterr().err)
