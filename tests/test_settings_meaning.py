"""Settings are checked against their meaning, through every path: a recipe, `--set`, rethreshold.

Each case is a recipe that parses but cannot mean anything (a threshold outside its score's range,
NaN, min above max, a zero size, a zero cap, a key given twice, ...): one line, exit 2, naming the
setting; nothing is written.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import pytest
import yaml

import imgdiff
from conftest import pixel_recipe
from imgdiff.cli import main
from imgdiff.errors import UsageError
from imgdiff.stages import STAGES
from pairs_data import write_pairs

PIXEL_STAGES = [
    {"pair_filter": {"method": "pixel"}},
    {"regions": {"method": "pixel"}},
    {"describe": {"method": "template"}},
]

# (stage, setting, value, words the one-line error must hold)
BAD_SETTINGS = [
    ("pair_filter", "similarity_min", 1.5, "must lie in [-1.6, 1]"),
    ("pair_filter", "similarity_min", math.nan, "finite"),
    ("pair_filter", "structure_min", -2.0, "range of structure"),
    ("pair_filter", "changed_area_max", math.inf, "finite"),
    ("pair_filter", "changed_area_min", -0.1, "range of changed_area"),
    ("pair_filter", "changed_area_min", 0.5, "changed_area_max: must be at least changed_area_min"),
    ("pair_filter", "median_diff_max", 400.0, "range of median_diff"),
    ("pair_filter", "size", 0, "greater than or equal to 1"),
    ("pair_filter", "blur", -1.0, "greater than or equal to 0"),
    ("pair_filter", "delta_e", -5.0, "greater than or equal to 0"),
    ("regions", "max_regions", 0, "greater than or equal to 1"),
    ("regions", "max_regions", -3, "greater than or equal to 1"),
    ("regions", "nms_iou", 1.5, "less than or equal to 1"),
    ("regions", "area_min", 0.9, "area_max: must be at least area_min"),
    ("regions", "mean_diff_min", -1.0, "range of mean_diff"),
    ("regions", "open_size", -1, "greater than or equal to 0"),
    ("regions", "join_size", -31, "greater than or equal to 0"),
    ("regions", "size", 0, "greater than or equal to 1"),
    ("regions", "max_candidates", 0, "greater than or equal to 1"),
    ("regions", "shadow_ratio", 2.0, "less than or equal to 1"),
    ("describe", "max_regions", 0, "greater than or equal to 1"),
    ("describe", "area_max", 2.0, "range of area"),
]


@pytest.fixture(scope="module")
def small_pairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pairs(tmp_path_factory.mktemp("pairs"), 4, size=48)


def _recipe(small_pairs: Path, stage: str = "", setting: str = "", value: object = None) -> dict:
    recipe = pixel_recipe(small_pairs)
    recipe["stages"] = json.loads(json.dumps(PIXEL_STAGES))
    for entry in recipe["stages"]:
        if stage in entry:
            entry[stage][setting] = value
    return recipe


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().err.strip()


@pytest.mark.parametrize(("stage", "setting", "value", "words"), BAD_SETTINGS)
def test_a_meaningless_setting_is_one_line_naming_it(
    tmp_path, small_pairs, capsys, stage, setting, value, words
) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(_recipe(small_pairs, stage, setting, value)))
    code, err = _cli(capsys, "run", str(path), "--out", str(tmp_path / "run"))
    assert code == 2 and "\n" not in err and words in err, err
    assert f"{stage}.{setting}" in err or f"{stage}.{setting.replace('_min', '_max')}" in err
    assert not (tmp_path / "run").exists()


def _override(stage: str, setting: str, value: object) -> str:
    text = {"nan": ".nan", "inf": ".inf"}.get(repr(value), repr(value))
    return f"{stage}.{setting}={text}"


@pytest.mark.parametrize(("stage", "setting", "value", "words"), BAD_SETTINGS)
def test_set_checks_the_same_way(tmp_path, small_pairs, stage, setting, value, words) -> None:
    with pytest.raises(UsageError) as info:
        imgdiff.run(
            _recipe(small_pairs), tmp_path / "dry", overrides=[_override(stage, setting, value)], dry_run=True
        )
    assert words in str(info.value)


def test_rethreshold_checks_the_same_way_and_remembers_nothing_refused(tmp_path, small_pairs) -> None:
    imgdiff.run(_recipe(small_pairs), tmp_path / "run")
    before = (tmp_path / "run" / "run.json").read_bytes()
    tried = 0
    for stage, setting, value, words in BAD_SETTINGS:
        method = next(e[stage]["method"] for e in PIXEL_STAGES if stage in e)
        if setting in STAGES[stage][method].Settings.decision_fields():
            with pytest.raises(UsageError, match=re.escape(words)):
                imgdiff.rethreshold(tmp_path / "run", [_override(stage, setting, value)])
            tried += 1
    assert tried >= 12
    assert (tmp_path / "run" / "run.json").read_bytes() == before  # nothing refused was remembered


def test_equal_inclusive_bounds_are_allowed_and_exclusive_ones_are_not(tmp_path, small_pairs) -> None:
    imgdiff.run(
        _recipe(small_pairs), tmp_path / "a", dry_run=True, overrides=["pair_filter.changed_area_min=0.4"]
    )
    recipe = _recipe(small_pairs)
    recipe["stages"][0]["pair_filter"] |= {"changed_area_min": None, "changed_area_max": None}
    recipe["stages"][0]["pair_filter"] |= {"similarity_min": None}
    imgdiff.run(recipe, tmp_path / "b", dry_run=True)


def test_every_threshold_of_every_stage_has_a_documented_score_range() -> None:
    for methods in STAGES.values():
        for cls in methods.values():
            for name in cls.Settings.model_fields:
                if name.endswith(("_min", "_max", "_gt", "_lt")):
                    score = name.rsplit("_", 1)[0]
                    assert score in cls.Settings.SCORES, f"{cls.__name__}.{name}: no range for {score}"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (b"seed: 1\nseed: 2\n", "key 'seed' appears twice"),
        (b"stages:\n  - pair_filter: {method: pixel, size: 32, size: 64}\n", "key 'size' appears twice"),
        (b"stages:\n  - pair_filter: pixel\n", "expected a mapping of settings such as {method: pixel}"),
        (b"stages:\n  - pair_filter: {method: [pixel]}\n", "expected one of: clip, pixel"),
        (b"stages:\n  - pair_filter: {method: pixel, preset: [paper]}\n", "expected a preset name"),
        (b"export: [[llava]]\n", "export: format"),
        ("seed: 1  # caf\xe9\n".encode("latin-1"), "not UTF-8 text"),
        (b"seed: [\n", "not valid YAML at line"),
    ],
)
def test_recipe_text_problems_are_one_line(tmp_path, small_pairs, capsys, text, words) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_bytes(f"source: {{type: pairs, path: {small_pairs}}}\n".encode() + text)
    code, err = _cli(capsys, "run", str(path), "--out", str(tmp_path / "run"))
    assert code == 2 and "\n" not in err and words in err, err


def test_source_type_that_is_not_a_name(tmp_path, capsys) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text("source: {type: [pairs]}\n")
    code, err = _cli(capsys, "run", str(path), "--out", str(tmp_path / "run"))
    assert code == 2 and "unknown source" in err


def test_a_limit_beyond_the_largest_index_is_one_line(tmp_path, capsys) -> None:
    code, err = _cli(capsys, "demo", "--out", str(tmp_path / "d"), "--limit", str(sys.maxsize + 1))
    assert code == 2 and "\n" not in err and f"must be at most {sys.maxsize}" in err


def test_make_tiny_into_a_file_is_one_line(tmp_path, capsys) -> None:
    (tmp_path / "f").write_text("x")
    for target in (tmp_path / "f", tmp_path / "f" / "sub"):
        code, err = _cli(capsys, "models", "make-tiny", str(target), "--only", "clip")
        assert code == 2 and "imgdiff: error: make-tiny:" in err and "Traceback" not in err
