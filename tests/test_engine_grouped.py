"""The local engine with models per group (chunk by chunk, one group's models loaded at a time)
gives the streaming mode's outputs, byte for byte, and resumes by the same rule; the engine picks
that mode when the recipe's weights do not fit the GPU budget, and says why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from imgdiff import runner
from imgdiff.engine.choice import WEIGHTS_SHARE, choose
from imgdiff.engine.plan import Plan
from imgdiff.engine.weights import GB, Estimate, estimate
from imgdiff.models import ModelEntry
from imgdiff.recipe import load_recipe


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_models_per_group_equals_streaming_and_resumes(tmp_path: Path) -> None:
    streaming, grouped = tmp_path / "streaming", tmp_path / "grouped"
    batches = ["batch_size=2"]  # chunks are whole source batches: 2 records each here
    runner.run("quickstart", streaming, limit=8, overrides=batches)
    result = runner.run("quickstart", grouped, limit=4, overrides=batches, chunk_size=2)  # stopped part way
    assert result.outcome.counts[0].computed == 4
    result = runner.run("quickstart", grouped, limit=8, overrides=batches, chunk_size=2)
    assert result.outcome.counts[0].computed == 4 and result.outcome.counts[0].reused == 4
    assert (grouped / "records.jsonl").read_bytes() == (streaming / "records.jsonl").read_bytes()
    assert _tree(grouped / "images") == _tree(streaming / "images")
    assert _tree(grouped / "export") == _tree(streaming / "export")
    engine = json.loads((grouped / "stats.json").read_text())["engine"]
    assert engine["mode"] == "models-per-group" and engine["chunk_size"] == 2
    assert engine["why"] == "forced by --chunk-size 2"
    assert list(engine["peak_gpu_gb"]) == ["source", "pair_filter+regions+describe"]
    engine = json.loads((streaming / "stats.json").read_text())["engine"]
    assert engine == {"mode": "streaming", "why": "no model weights go to a GPU"}


def _tiny_plan(tiny_models: Any, *more: str, **devices: str) -> Plan:
    """The img-diff recipe on the tiny local models (the LLM and the VL model served: no weights)."""
    sets = [f"source.path={Path('unused.json').absolute()}"]
    for name in ("qwen", "llava"):
        sets += [f"models.{name}.backend=openai", f"models.{name}.base_url=http://127.0.0.1:9"]
        sets += [f"models.{name}.model=m"]
    for name in ("qwen", "llava", "sdxl", "clip", "blip"):
        sets.append(f"models.{name}.id=null")
    for name in ("sdxl", "clip", "blip", "fastsam"):
        sets.append(f"models.{name}.path={tiny_models(name)['path']}")
    sets += [f"models.{name}.device={device}" for name, device in devices.items()]
    sets += more
    return Plan.make(load_recipe("img-diff", sets), "fingerprint")


def test_weights_estimated_on_the_meta_device_match_the_loaded_models(tiny_models: Any) -> None:
    from diffusers import DiffusionPipeline
    from transformers import BlipForImageTextRetrieval, CLIPModel

    def loaded(model: Any) -> int:
        return sum(p.numel() for p in model.parameters())

    pipe = DiffusionPipeline.from_pretrained(tiny_models("sdxl")["path"])
    sdxl = sum(loaded(c) for c in pipe.components.values() if hasattr(c, "parameters"))
    expected = {
        "sdxl": sdxl,
        "clip": loaded(CLIPModel.from_pretrained(tiny_models("clip")["path"])),
        "blip": loaded(BlipForImageTextRetrieval.from_pretrained(tiny_models("blip")["path"])),
    }
    for name, parameters in expected.items():
        assert estimate(ModelEntry(**tiny_models(name))) == Estimate(parameters, "meta"), name
    fastsam = Path(tiny_models("fastsam")["path"])  # ultralytics: no meta build, the file's size
    assert estimate(ModelEntry(**tiny_models("fastsam"))) == Estimate(fastsam.stat().st_size // 2, "files")


def test_the_budget_chooses_the_mode(tiny_models: Any) -> None:
    plan = _tiny_plan(tiny_models)
    weights = choose(plan, gpu_memory_gb=1000.0).weights_gb
    entries = plan.recipe.models
    exact = sum(estimate(entries[n]).gb(entries[n].dtype) for n in ("sdxl", "clip", "blip", "fastsam"))
    assert weights == pytest.approx(exact) and weights > 0
    below = choose(plan, gpu_memory_gb=weights / 2)  # a budget below the estimate: groups
    assert below.grouped and below.chunk_size == 256 and below.budget_gb == weights / 2
    assert "gpu_memory_gb" in below.why and "more than 80%" in below.why
    assert set(below.groups_gb) == {"edit", "generate", "pair_filter+regions+describe"}
    assert below.groups_gb["edit"] == 0  # the LLM is served: no weights here
    above = choose(plan, gpu_memory_gb=2 * weights / WEIGHTS_SHARE)  # above it: streaming
    assert not above.grouped and above.chunk_size is None and "not more than" in above.why
    assert choose(plan, chunk_size=7).stats() == {
        "mode": "models-per-group",
        "why": "forced by --chunk-size 7",
        "chunk_size": 7,
    }
    on_cpu = _tiny_plan(tiny_models, sdxl="cpu", clip="cpu", blip="cpu", fastsam="cpu")
    assert not choose(on_cpu, gpu_memory_gb=1e-9).grouped  # nothing goes to the GPU


def test_hub_ids_not_on_disk_take_the_family_table() -> None:
    # The paper's recipe (hub ids not cached here, FastSAM-x.pt absent) against a 24 GB card.
    choice = choose(Plan.make(load_recipe("img-diff", ["source.path=unused.json"]), "fp"), gpu_memory_gb=24)
    assert choice.grouped and choice.budget_gb == 24
    # Qwen2-7B in float32 (the recipe's dtype) alone: the parameters counted from its architecture.
    assert choice.groups_gb["edit"] == 7_616_000_000 * 4 / GB
    assert "qwen 28.37 GB (table)" in choice.why
    mystery = ModelEntry(role="text_generator", id="someone/mystery-model")
    assert estimate(mystery) is None
    assert estimate(ModelEntry(role="text_generator", id="someone/model-1.5B-chat")) == Estimate(
        1_500_000_000, "table"
    )
    assert estimate(ModelEntry(role="text_generator", backend="openai", base_url="u", model="m")) is None


def test_unknown_sizes_are_named_and_count_as_nothing(tiny_models: Any) -> None:
    plan = _tiny_plan(tiny_models, "models.sdxl.path=null", "models.sdxl.id=someone/mystery")
    choice = choose(plan, gpu_memory_gb=100)
    assert not choice.grouped and choice.unknown == ("sdxl",)
    assert "size unknown, counted as 0: sdxl" in choice.why
    assert choice.stats()["unknown_size"] == ["sdxl"]


def test_tiny_img_diff_chosen_models_per_group_equals_streaming(tmp_path: Path, tiny_img_diff: Any) -> None:
    grouped, streaming = tmp_path / "grouped", tiny_img_diff.reference
    assert tiny_img_diff(grouped, gpu_memory_gb=1e-6) == 0  # a budget below the tiny models' weights
    assert (grouped / "records.jsonl").read_bytes() == (streaming / "records.jsonl").read_bytes()
    assert _tree(grouped / "images") == _tree(streaming / "images")
    assert _tree(grouped / "aux") == _tree(streaming / "aux")
    engine = json.loads((grouped / "stats.json").read_text())["engine"]
    assert engine["mode"] == "models-per-group" and engine["budget_gb"] == 1e-6
    assert list(engine["peak_gpu_gb"]) == ["source", "edit", "generate", "pair_filter+regions+describe"]
    log = (grouped / "logs" / "run-00001.log").read_text()
    assert "engine: models-per-group: weights" in log and "peak GPU memory" in log
    # Resume is unchanged: the same command again computes nothing.
    assert tiny_img_diff(grouped, gpu_memory_gb=1e-6) == 0
    stats = json.loads((grouped / "stats.json").read_text())
    assert all(step["computed"] == 0 for step in stats["stages"])
    assert (grouped / "records.jsonl").read_bytes() == (streaming / "records.jsonl").read_bytes()


@pytest.mark.parametrize("memory", ["0", "-1", "nan", "inf"])
def test_a_bad_gpu_memory_is_a_usage_error(tmp_path: Path, memory: str) -> None:
    from imgdiff.cli import main

    assert main(["run", "quickstart", "--out", str(tmp_path), "--limit", "1", "--gpu-memory-gb", memory]) == 2
