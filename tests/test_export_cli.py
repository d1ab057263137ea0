"""`imgdiff export` flags, the recipe's `export:` section, and bad input: one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import imgdiff
from export_data import make_run
from imgdiff.cli import main
from imgdiff.errors import UsageError
from imgdiff.recipe import load_recipe
from pairs_data import write_pairs


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("cli"))


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip()


def test_flags_reach_the_export(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    to = str(tmp_path / "x")
    args = ["--where", "region.index == 0", "--split", "train=0.5,val=0.5", "--max-per-object", "1"]
    code, out, _ = _main(
        capsys, "export", str(run), "--format", "sharegpt", "--to", to, *args, "--workers", "1"
    )
    summary = json.loads(out.split(": ", 1)[1])
    # first boxes: 7; cat pairs 0-2 -> 1, dog pairs 3-4 -> 1, pairs 5 and 7 uncapped: 4
    assert code == 0 and summary["samples"] == 4 and sum(summary["splits"].values()) == 4
    info = json.loads((tmp_path / "x" / "sharegpt" / "dataset_info.json").read_text())
    assert sorted(info) == ["imgdiff_train", "imgdiff_val"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "llava", "--where", "kind == "], "--where: syntax error at column 9: expected a value"),
        (["--format", "parquett"], "unknown format 'parquett' (did you mean 'parquet'?)"),
        (["--format", "llava", "--where", "knd == 'x'"], "--where: no field 'knd' (did you mean 'kind'?)"),
        (["--format", "llava", "--split", "train=0.9,val"], "--split: expected NAME=SHARE"),
        (["--format", "llava", "--split", "train=0.9,val=0.2"], "the shares sum to 1.1, not 1"),
        (["--format", "llava", "--max-per-object", "0"], "max_per_object: Input should be greater than"),
    ],
)
def test_bad_options_exit_2_with_one_line(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _, err = _main(capsys, "export", str(run), "--to", str(tmp_path), *args)
    assert code == 2 and "\n" not in err and message in err, err
    assert not (tmp_path / "llava").exists()


def test_an_unfinished_run_exits_2_with_one_line(run: Path, tmp_path: Path, capsys) -> None:
    stats_path = run / "stats.json"
    stats = json.loads(stats_path.read_text())
    stats_path.write_text(json.dumps({**stats, "complete": False}))
    try:
        code, _, err = _main(capsys, "export", str(run), "--format", "llava", "--to", str(tmp_path))
    finally:
        stats_path.write_text(json.dumps(stats))
    assert code == 2 and "\n" not in err and "is not a finished run" in err
    assert "run the same `imgdiff run` command" in err


def test_the_recipe_export_section_takes_options(tmp_path: Path) -> None:
    pairs = write_pairs(tmp_path / "pairs", 6)
    recipe = {
        "source": {"type": "pairs", "path": str(pairs)},
        "stages": [
            {"pair_filter": {"method": "pixel"}},
            {"regions": {"method": "pixel"}},
            {"describe": {"method": "template"}},
        ],
        "export": {
            "formats": ["llava", "parquet"],
            "split": {"train": 0.5, "val": 0.5},
            "where": "region.index == 0",
        },
    }
    result = imgdiff.run(recipe, tmp_path / "run")
    assert set(result.exports) == {"llava", "parquet"}
    assert result.exports["llava"]["samples"] == result.exports["llava"]["pairs"] > 0  # one box per pair
    assert sorted(result.exports["llava"]["splits"]) == ["train", "val"]
    stored = json.loads((tmp_path / "run" / "run.json").read_text())["recipe"]["export"]
    assert stored == recipe["export"]  # run.json keeps the section as a mapping
    assert load_recipe({**recipe, "export": stored}).export_options == {
        "split": {"train": 0.5, "val": 0.5},
        "where": "region.index == 0",
    }


@pytest.mark.parametrize(
    ("export", "message"),
    [
        ({"formats": ["llava"], "where": "a <"}, "syntax error at column 4"),
        ({"formats": ["llava"], "wher": "a"}, "unknown setting 'wher' (did you mean 'where'?)"),
        ({"formats": ["lava"]}, "format 'lava' is not available (did you mean 'llava'?)"),
        ("llava", "expected a list of formats or a mapping"),
    ],
)
def test_a_bad_export_section_fails_the_recipe(tmp_path: Path, export: object, message: str) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"source": {"type": "synthetic", "count": 1}, "export": export}))
    with pytest.raises(UsageError) as caught:
        load_recipe(path)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_set_reaches_export_options() -> None:
    recipe = load_recipe("quickstart", ["export.split={train: 0.9, val: 0.1}", "export.dedup=true"])
    assert recipe.export == ("llava",)
    assert recipe.export_options == {"split": {"train": 0.9, "val": 0.1}, "dedup": True}
    with pytest.raises(UsageError, match="unknown setting 'dedupe'"):
        load_recipe("quickstart", ["export.dedupe=true"])
