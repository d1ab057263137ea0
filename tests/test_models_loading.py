"""Model entries end to end: loaded once per worker and shared by the stages that name them, and a
model that cannot be loaded stops `imgdiff run` with one line (exit 2) that names it, says where
imgdiff looked and how to get it.

The stages here are test-only probes registered for the test (as in test_plan.py): they take the
entries the recipe names, use them on every record, and record what the pool handed them.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import imgdiff
from conftest import pixel_recipe
from fake_hub import write_hub_cache
from imgdiff.cli import main
from imgdiff.models import ModelEntry, ModelPool
from imgdiff.record import Record
from imgdiff.settings import model_ref
from imgdiff.stages import STAGES
from imgdiff.stages.base import Stage, StageSettings

HUB_ID = "openai/clip-vit-base-patch32"


class ProbeSettings(StageSettings):
    embedder: str = model_ref("embedder")
    matcher: str | None = model_ref("matcher", required=False)


def probe_stage(name: str, seen: list[dict[str, Any]]) -> type[Stage]:
    """A stage that scores each pair with the models it names and records, at setup, the instances
    it got and the pool's load counts."""

    class Probe(Stage):
        Settings = ProbeSettings

        def setup(self, models: ModelPool, images: Any) -> None:
            super().setup(models, images)
            self.embedder = models.get(self.settings.embedder)
            self.matcher = models.get(self.settings.matcher) if self.settings.matcher else None
            seen.append(
                {
                    "stage": self.name,
                    "embedder": self.embedder,
                    "matcher": self.matcher,
                    "loads": dict(models.loads),
                }
            )

        def __call__(self, records: list[Record]) -> list[Record]:
            a = [self.images.load(r, "a") for r in records]
            b = [self.images.load(r, "b") for r in records]
            cosine = np.sum(self.embedder.embed_images(a) * self.embedder.embed_images(b), axis=1)
            match = (
                self.matcher.match(a, [r.caption_a or "a photo" for r in records])[0]
                if self.matcher
                else None
            )
            for i, record in enumerate(records):
                record.scores[f"{self.name}.cosine"] = float(cosine[i])
                if match is not None:
                    record.scores[f"{self.name}.match"] = float(match[i])
            return records

    Probe.name, Probe.method = name, "probe"
    return Probe


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Registers probe stages as pair_filter/probe and regions/probe; returns what they record."""
    records: list[dict[str, Any]] = []
    for name in ("pair_filter", "regions"):
        monkeypatch.setitem(STAGES, name, {"probe": probe_stage(name, records)})
    return records


def test_stages_naming_the_same_entries_share_one_load_each(
    tmp_path: Path, pairs_file: Path, tiny_models: Any, seen: list[dict[str, Any]]
) -> None:
    names = {"embedder": "clip", "matcher": "blip"}
    recipe = {
        **pixel_recipe(pairs_file),
        "models": {"clip": tiny_models("clip"), "blip": tiny_models("blip")},
        "stages": [{"pair_filter": {"method": "probe", **names}}, {"regions": {"method": "probe", **names}}],
    }
    imgdiff.run(recipe, tmp_path / "run", limit=8)  # two batches of 4 through the local engine

    assert [s["stage"] for s in seen] == ["pair_filter", "regions"]  # set up once each
    first, second = seen
    assert second["embedder"] is first["embedder"] and second["matcher"] is first["matcher"]
    assert second["loads"] == {"clip": 1, "blip": 1}
    records = imgdiff.load_records(tmp_path / "run")
    assert len(records) == 8
    for record in records:  # both stages really used the shared models on every record
        assert {"pair_filter.cosine", "pair_filter.match", "regions.cosine", "regions.match"} <= set(
            record.scores
        )


def test_hub_id_in_the_cache_loads_offline(
    tmp_path: Path, tiny_models: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    snapshot = write_hub_cache(cache, HUB_ID, Path(tiny_models("clip")["path"]))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from imgdiff.models.loading import locate

    entry = ModelEntry(role="embedder", id=HUB_ID)
    assert locate("clip", entry) == snapshot
    assert ModelPool({"clip": entry}).get("clip").embed_texts(["a cat"]).shape[0] == 1


@pytest.fixture
def run_error(
    tmp_path: Path, pairs_file: Path, capsys: pytest.CaptureFixture[str], seen: list[dict[str, Any]]
) -> Callable[[dict[str, Any]], str]:
    """`run_error(clip)`: `imgdiff run` of a recipe whose one probe stage names the model entry
    `clip`; it must exit 2 with one line, which is returned."""

    def run(clip: dict[str, Any]) -> str:
        recipe = {
            **pixel_recipe(pairs_file),
            "models": {"clip": clip},
            "stages": [{"pair_filter": {"method": "probe", "embedder": "clip"}}],
        }
        path = tmp_path / "recipe.yaml"
        path.write_text(yaml.safe_dump(recipe))
        capsys.readouterr()
        code = main(["run", str(path), "--out", str(tmp_path / "run"), "--no-progress"])
        err = capsys.readouterr().err.strip()
        assert code == 2, err
        assert err.startswith("imgdiff: error: model 'clip'") and "\n" not in err, err
        return err

    return run


def test_missing_path_names_the_model_and_where_it_looked(
    tmp_path: Path, run_error: Callable[[dict[str, Any]], str]
) -> None:
    missing = tmp_path / "models" / "clip"
    err = run_error({"role": "embedder", "path": str(missing)})
    assert f"path {missing} not found" in err and "fix the path" in err


def test_missing_release_asset_says_how_to_fetch_it(tmp_path: Path) -> None:
    from imgdiff.models.loading import ModelNotFound, locate

    entry = ModelEntry(role="segmenter", backend="ultralytics", path=str(tmp_path / "FastSAM-x.pt"))
    with pytest.raises(
        ModelNotFound, match=r"FastSAM-x.pt not found; .*imgdiff models fetch RECIPE --to DIR"
    ):
        locate("fastsam", entry)


def test_hub_id_not_in_the_cache_offline_names_the_cache_and_the_fetch_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_error: Callable[[dict[str, Any]], str]
) -> None:
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    err = run_error({"role": "embedder", "id": HUB_ID})
    assert f"hub id {HUB_ID} is not in the Hugging Face cache {cache}" in err
    assert "HF_HUB_OFFLINE is set" in err and "imgdiff models fetch RECIPE --to DIR" in err


def test_missing_backend_package_gives_the_install_command(
    tiny_models: Any, monkeypatch: pytest.MonkeyPatch, run_error: Callable[[dict[str, Any]], str]
) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # `import transformers` now fails
    monkeypatch.delitem(sys.modules, "imgdiff.models.clip", raising=False)  # so it imports afresh
    err = run_error(tiny_models("clip"))
    assert "needs transformers, which is not installed" in err
    assert "pip install -c constraints.txt 'imgdiff[models]'" in err


def test_cuda_without_a_gpu_is_one_line(
    tiny_models: Any, monkeypatch: pytest.MonkeyPatch, run_error: Callable[[dict[str, Any]], str]
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same on a machine with one
    err = run_error({**tiny_models("clip"), "device": "cuda"})
    assert "device cuda: no CUDA GPU is visible to torch; use device auto or cpu" in err


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("device", "cuda:x", "expected auto, cpu, cuda or cuda:N"),
        ("device", "gpu", "expected auto, cpu, cuda or cuda:N"),
        ("max_retries", -1, "greater than or equal to 0"),
        ("concurrency", 0, "greater than or equal to 1"),
        ("timeout_s", 0.0, "greater than 0"),
    ],
)
def test_malformed_entry_fields_fail_when_the_recipe_loads(field: str, value: Any, problem: str) -> None:
    """Before any work, with one line naming the field (a device torch cannot parse, or a negative
    retry count, used to fail only later, with a traceback)."""
    from imgdiff.errors import UsageError
    from imgdiff.recipe import load_recipe

    server = {
        "role": "text_generator",
        "backend": "openai",
        "base_url": "http://127.0.0.1:9/v1",
        "model": "m",
    }
    recipe = {"source": {"type": "synthetic"}, "models": {"m": {**server, field: value}}}
    with pytest.raises(UsageError, match=rf"^recipe: models\.m\.{field}: .*{problem}") as error:
        load_recipe(recipe)
    assert "\n" not in str(error.value)


def test_a_folder_without_a_model_is_one_line(
    tmp_path: Path, tiny_models: Any, run_error: Callable[[dict[str, Any]], str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    err = run_error({"role": "embedder", "path": str(empty)})
    assert f"{empty} is not a transformers model folder (no config.json)" in err
    # config and processor present, weights missing: transformers' own first line, not a traceback
    broken = tmp_path / "no-weights"
    shutil.copytree(tiny_models("clip")["path"], broken, ignore=shutil.ignore_patterns("*.safetensors"))
    err = run_error({"role": "embedder", "path": str(broken)})
    assert f"cannot load {broken}: " in err and "model.safetensors" in err


def test_weights_load_in_the_entrys_dtype(tiny_models: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Loaded in the dtype (the CPU always gets float32, so the GPU's choice is forced here), with
    the float32 buffers transformers keeps (RoPE frequencies) left in float32."""
    import torch

    from imgdiff.models import loading

    monkeypatch.setattr(loading, "dtype_of", lambda entry, device: torch.bfloat16)
    llm = ModelPool({"llm": ModelEntry(**tiny_models("llm"), dtype="bfloat16")}).get("llm")
    assert llm.model.dtype == torch.bfloat16
    assert llm.model.model.rotary_emb.inv_freq.dtype == torch.float32
