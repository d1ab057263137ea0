from __future__ import annotations

from pathlib import Path

import pytest

from conftest import pixel_recipe
from imgdiff.engine.plan import Plan
from imgdiff.models import ModelPool
from imgdiff.recipe import load_recipe
from imgdiff.settings import model_ref
from imgdiff.stages import STAGES
from imgdiff.stages.base import Stage, StageSettings


class UsesModels(StageSettings):
    embedder: str = model_ref("embedder")
    matcher: str | None = model_ref("matcher", required=False)


def _stage(name: str) -> type[Stage]:
    return type(f"Test_{name}", (Stage,), {"name": name, "method": "test", "Settings": UsesModels})


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("edit", "generate", "regions", "describe"):
        monkeypatch.setitem(STAGES, name, {"test": _stage(name)})


def _models() -> dict:
    return {
        "qwen": {"role": "embedder", "id": "q"},
        "sdxl": {"role": "embedder", "id": "s"},
        "clip": {"role": "embedder", "id": "c"},
        "blip": {"role": "matcher", "id": "b"},
    }


def test_default_grouping_follows_shared_models(pairs_file: Path, registry: None) -> None:
    raw = {
        **pixel_recipe(pairs_file),
        "models": _models(),
        "stages": [
            {"edit": {"method": "test", "embedder": "qwen"}},
            {"generate": {"method": "test", "embedder": "sdxl"}},
            {"pair_filter": {"method": "pixel"}},
            {"regions": {"method": "test", "embedder": "clip", "matcher": "blip"}},
            {"describe": {"method": "test", "embedder": "clip", "matcher": "blip"}},
        ],
    }
    plan = Plan.make(load_recipe(raw), "src")
    assert [[s.name for s in g] for g in plan.groups()] == [
        ["edit"],
        ["generate", "pair_filter"],
        ["regions", "describe"],
    ]


def test_model_refs_must_exist_with_the_right_role(pairs_file: Path, registry: None) -> None:
    from imgdiff.errors import UsageError

    raw = {
        **pixel_recipe(pairs_file),
        "models": _models(),
        "stages": [{"regions": {"method": "test", "embedder": "clip", "matcher": "clip"}}],
    }
    with pytest.raises(UsageError, match="model 'clip' has role embedder, needs matcher"):
        load_recipe(raw)
    raw["stages"] = [{"regions": {"method": "test", "embedder": "clap"}}]
    with pytest.raises(UsageError, match="no model entry 'clap' \\(did you mean 'clip'"):
        load_recipe(raw)


def test_fingerprints_follow_scores_not_decisions(pairs_file: Path) -> None:
    base = Plan.make(load_recipe(pixel_recipe(pairs_file)), "src").fingerprints["pair_filter"]
    threshold = Plan.make(load_recipe(pixel_recipe(pairs_file), ["pair_filter.similarity_min=0.1"]), "src")
    size = Plan.make(load_recipe(pixel_recipe(pairs_file), ["pair_filter.size=32"]), "src")
    upstream = Plan.make(load_recipe(pixel_recipe(pairs_file)), "other-source")
    assert threshold.fingerprints["pair_filter"] == base
    assert size.fingerprints["pair_filter"] != base != upstream.fingerprints["pair_filter"]


def test_device_does_not_define_outputs(pairs_file: Path, registry: None) -> None:
    raw = {
        **pixel_recipe(pairs_file),
        "models": _models(),
        "stages": [{"regions": {"method": "test", "embedder": "clip"}}],
    }
    cpu = Plan.make(load_recipe(raw, ["models.clip.device=cpu"]), "s").fingerprints
    cuda = Plan.make(load_recipe(raw, ["models.clip.device=cuda"]), "s").fingerprints
    half = Plan.make(load_recipe(raw, ["models.clip.dtype=float16"]), "s").fingerprints
    assert cpu == cuda != half


def test_stages_naming_one_entry_share_one_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    from imgdiff.models import LOADERS, ModelEntry

    loads = []
    monkeypatch.setitem(
        LOADERS, ("embedder", "transformers"), lambda name, entry: loads.append(name) or object()
    )
    pool = ModelPool({"clip": ModelEntry(role="embedder", id="c")})
    assert pool.get("clip") is pool.get("clip") and loads == ["clip"] and pool.loads == {"clip": 1}
