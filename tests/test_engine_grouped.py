"""The local engine with models per group (chunk by chunk, one group's models loaded at a time)
gives the streaming mode's outputs, byte for byte, and resumes by the same rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from imgdiff import runner


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_models_per_group_equals_streaming_and_resumes(tmp_path: Path) -> None:
    streaming, grouped = tmp_path / "streaming", tmp_path / "grouped"
    runner.run("quickstart", streaming, limit=20)
    result = runner.run("quickstart", grouped, limit=12, chunk_size=5)  # a run stopped part way
    assert [c.computed for c in result.outcome.counts][0] == 12
    result = runner.run("quickstart", grouped, limit=20, chunk_size=5)
    assert result.outcome.counts[0].computed == 8 and result.outcome.counts[0].reused == 12
    for name in ("records.jsonl",):
        assert (grouped / name).read_bytes() == (streaming / name).read_bytes()
    assert _tree(grouped / "images") == _tree(streaming / "images")
    assert _tree(grouped / "export") == _tree(streaming / "export")
    stats = json.loads((grouped / "stats.json").read_text())
    assert stats["engine"]["mode"] == "models-per-group" and stats["engine"]["chunk_size"] == 5
    assert list(stats["engine"]["peak_gpu_gb"]) == ["source", "pair_filter+regions+describe"]
    assert "engine" not in json.loads((streaming / "stats.json").read_text())


@pytest.mark.slow  # every model stage on tiny models, once per mode
def test_tiny_img_diff_models_per_group_equals_streaming(tmp_path: Path, tiny_models: Any) -> None:
    from openai_server import ChatServer
    from test_recipe_img_diff import CAPTIONS, scripted_edit
    from test_recipe_img_diff import _run as run_img_diff

    captions = tmp_path / "captions.json"
    captions.write_text(json.dumps([{"image_id": i, "caption": c} for i, (c, _, _) in enumerate(CAPTIONS)]))
    with ChatServer(scripted_edit) as server:
        assert run_img_diff(tmp_path / "streaming", captions, server, tiny_models) == 0
        assert run_img_diff(tmp_path / "grouped", captions, server, tiny_models, chunk_size=2) == 0
    streaming, grouped = tmp_path / "streaming", tmp_path / "grouped"
    assert (grouped / "records.jsonl").read_bytes() == (streaming / "records.jsonl").read_bytes()
    assert _tree(grouped / "images") == _tree(streaming / "images")
    assert _tree(grouped / "aux") == _tree(streaming / "aux")
    peaks = json.loads((grouped / "stats.json").read_text())["engine"]["peak_gpu_gb"]
    assert list(peaks) == ["source", "edit", "generate", "pair_filter+regions+describe"]
