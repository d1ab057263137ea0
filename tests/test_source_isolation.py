"""The source step isolates items: whatever one item raises while it is read or decoded, that item
becomes a rejected record `malformed_item: ...` and the run completes; the rerun reuses it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import imgdiff
from conftest import pixel_recipe
from imgdiff.record import Record
from imgdiff.sources.pairs import PairsSource


def _records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]


def test_a_100000_deep_json_line_is_rejected_and_the_run_completes(tmp_path: Path, pairs_file: Path) -> None:
    lines = pairs_file.read_text().splitlines()
    pairs_file.write_text("\n".join([lines[0], "[" * 100_000 + "]" * 100_000, *lines[1:]]) + "\n")
    result = imgdiff.run(pixel_recipe(pairs_file), tmp_path / "run")
    records = _records(tmp_path / "run")
    assert len(records) == len(lines) + 1 and result.stats["complete"]
    deep = records[1]
    assert deep["rejected_by"] == "source" and deep["reason"] == "malformed_json: nested too deeply"
    assert "\n" not in deep["reason"]
    assert sum(r["rejected_by"] == "source" for r in records) == 1


def test_an_item_whose_decode_raises_is_rejected_alone(
    tmp_path: Path, pairs_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad_line = pairs_file.read_text().splitlines()[5]
    original = PairsSource.load
    calls = []

    def load(source: PairsSource, batch: list[tuple[Record, str]]) -> list[Record]:
        calls.append(len(batch))
        if any(raw == bad_line for _, raw in batch):
            raise IndexError("index 7 is out of bounds for axis 0 with size 3\nsecond line")
        return original(source, batch)

    monkeypatch.setattr(PairsSource, "load", load)
    imgdiff.run(pixel_recipe(pairs_file), tmp_path / "run")
    records = _records(tmp_path / "run")
    assert len(records) == 24
    assert [r["reason"] for r in records if r["rejected_by"] == "source"] == [
        "malformed_item: IndexError: index 7 is out of bounds for axis 0 with size 3"
    ]
    # The other items of the failing batch load as usual: equal to a run without the fault.
    monkeypatch.setattr(PairsSource, "load", original)
    imgdiff.run(pixel_recipe(pairs_file), tmp_path / "clean")
    clean = _records(tmp_path / "clean")
    bad_id = records[5]["id"]
    assert [r for r in records if r["rejected_by"] != "source"] == [c for c in clean if c["id"] != bad_id]
    # The rerun reuses the rejected item: no load at all.
    monkeypatch.setattr(PairsSource, "load", load)
    calls.clear()
    imgdiff.run(pixel_recipe(pairs_file), tmp_path / "run")
    assert calls == [] and _records(tmp_path / "run") == records
