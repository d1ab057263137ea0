from __future__ import annotations

from pathlib import Path

import pytest

from conftest import pixel_recipe
from imgdiff.errors import UsageError
from imgdiff.recipe import load_recipe, parse_value


def test_resolved_recipe_round_trips(pairs_file: Path) -> None:
    recipe = load_recipe(pixel_recipe(pairs_file), ["pair_filter.similarity_max=0.99", "seed=3"])
    again = load_recipe(recipe.to_dict())
    assert again == recipe and again.seed == 3
    (stage,) = recipe.stages
    assert stage.settings.similarity_max == 0.99
    assert stage.settings.similarity_min == 0.6  # from the paper preset


def test_explicit_settings_win_over_the_preset(pairs_file: Path) -> None:
    raw = pixel_recipe(pairs_file)
    raw["stages"] = [{"pair_filter": {"method": "pixel", "similarity_min": 0.5}}]
    assert load_recipe(raw).stages[0].settings.similarity_min == 0.5


def test_builtin_recipe_by_name(tmp_path: Path) -> None:
    recipe = load_recipe("pairs", [f"source.path={tmp_path / 'p.jsonl'}"])
    assert recipe.source.path == str(tmp_path / "p.jsonl")
    assert [s.name for s in recipe.stages] == ["pair_filter", "regions", "describe"]


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ([{"pair_filter": {}}], "method: missing, expected one of: clip, pixel"),
        ([{"pair_filter": {"method": "clipp"}}], "'clipp', expected one of: clip, pixel"),
        ([{"pair_fliter": {"method": "pixel"}}], "did you mean 'pair_filter'"),
        ([{"pair_filter": {"method": "pixel"}}, {"pair_filter": {"method": "pixel"}}], "appears twice"),
        (["pair_filter"], "each stage is one mapping"),
    ],
)
def test_bad_stage_entries(pairs_file: Path, stages: list, message: str) -> None:
    raw = {**pixel_recipe(pairs_file), "stages": stages}
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_recipe(raw)


def test_a_flow_stage_missing_from_this_version_says_so(
    pairs_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imgdiff import stages

    monkeypatch.delitem(stages.STAGES, "generate")
    raw = {**pixel_recipe(pairs_file), "stages": [{"generate": {"method": "p2p"}}]}
    with pytest.raises(UsageError, match="stage 'generate' is not available in this version"):
        load_recipe(raw)


def test_model_entries_are_strict(pairs_file: Path) -> None:
    raw = {**pixel_recipe(pairs_file), "models": {"clip": {"role": "embedder"}}}
    with pytest.raises(UsageError, match="models.clip: .*exactly one of id"):
        load_recipe(raw)
    raw["models"] = {"clip": {"role": "embeder", "id": "openai/clip-vit-base-patch32"}}
    with pytest.raises(UsageError, match="models.clip.role"):
        load_recipe(raw)
    raw["models"] = {"clip": {"role": "embedder", "id": "x", "dtyp": "float16"}}
    with pytest.raises(UsageError, match="unknown setting 'dtyp' \\(did you mean 'dtype'"):
        load_recipe(raw)
    raw["models"] = {"clip": {"role": "embedder", "id": "x"}}
    recipe = load_recipe(raw, ["models.clip.device=cuda"])
    assert recipe.models["clip"].device == "cuda"


def test_overrides_are_checked_like_the_file(pairs_file: Path) -> None:
    with pytest.raises(UsageError, match="expected key=value"):
        load_recipe(pixel_recipe(pairs_file), ["seed"])
    with pytest.raises(UsageError, match="no model entry 'clip'"):
        load_recipe(pixel_recipe(pairs_file), ["models.clip.device=cuda"])
    with pytest.raises(UsageError, match="batch_size: must be at least 1"):
        load_recipe(pixel_recipe(pairs_file), ["batch_size=0"])
    with pytest.raises(UsageError, match="export: format 'lava' is not available \\(did you mean 'llava'"):
        load_recipe(pixel_recipe(pairs_file), ["export=[lava]"])


def test_parse_value() -> None:
    assert parse_value("1e-3") == 0.001
    assert parse_value("3") == 3 and parse_value("true") is True
    assert parse_value("[a, b]") == ["a", "b"] and parse_value("text") == "text"


def test_setting_another_method_starts_that_stage_afresh(tmp_path: Path) -> None:
    captions = tmp_path / "c.txt"
    captions.write_text("a cat on a bench\n")
    recipe = load_recipe(
        "img-diff",
        [f"source.path={captions}", "edit.method=lexicon", "edit.n_edits=2", "edit.method=lexicon"],
    )
    edit = recipe.stages[0]
    assert (edit.method, edit.settings.n_edits) == ("lexicon", 2)  # llm: qwen dropped, n_edits kept
