"""Bad input: a one-line error with exit code 2, or a rejected record with its reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import pixel_recipe
from imgdiff.cli import main


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    err = capsys.readouterr().err.strip()
    return code, err


def _recipe_file(tmp_path: Path, recipe: dict) -> str:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


def test_unknown_recipe_key_names_it_and_the_nearest(tmp_path, pairs_file, capsys) -> None:
    recipe = pixel_recipe(pairs_file)
    recipe["stages"] = [{"pair_filter": {"method": "pixel", "similarity_mni": 0.9}}]
    code, err = _run(capsys, "run", _recipe_file(tmp_path, recipe), "--out", str(tmp_path / "o"))
    assert code == 2 and "\n" not in err
    assert "unknown setting 'similarity_mni'" in err and "did you mean 'similarity_min'" in err


def test_unknown_top_level_key(tmp_path, pairs_file, capsys) -> None:
    recipe = {**pixel_recipe(pairs_file), "stagse": []}
    code, err = _run(capsys, "run", _recipe_file(tmp_path, recipe), "--out", str(tmp_path / "o"))
    assert code == 2 and "unknown top-level key 'stagse'" in err and "did you mean 'stages'" in err


def test_unknown_set_key(tmp_path, pairs_file, capsys) -> None:
    path = _recipe_file(tmp_path, pixel_recipe(pairs_file))
    code, err = _run(capsys, "run", path, "--out", str(tmp_path / "o"), "--set", "pair_filtr.size=3")
    assert code == 2 and "no stage 'pair_filtr'" in err and "did you mean 'pair_filter'" in err


def test_wrong_type(tmp_path, pairs_file, capsys) -> None:
    path = _recipe_file(tmp_path, pixel_recipe(pairs_file))
    code, err = _run(capsys, "run", path, "--out", str(tmp_path / "o"), "--set", "pair_filter.size=big")
    assert code == 2 and "\n" not in err
    assert "stages[0].pair_filter.size" in err and "valid integer" in err and "'big'" in err


def test_missing_input_file(tmp_path, capsys) -> None:
    path = _recipe_file(tmp_path, pixel_recipe(tmp_path / "nowhere.jsonl"))
    code, err = _run(capsys, "run", path, "--out", str(tmp_path / "o"))
    assert code == 2 and "pairs file" in err and "nowhere.jsonl' not found" in err


def test_missing_recipe_file_and_unknown_builtin(tmp_path, capsys) -> None:
    code, err = _run(capsys, "run", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "o"))
    assert code == 2 and "recipe file" in err and "not found" in err
    code, err = _run(capsys, "run", "pair", "--out", str(tmp_path / "o"))
    assert code == 2 and "did you mean 'pairs'" in err


def test_malformed_yaml(tmp_path, capsys) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("seed: [1, 2\nstages: x\n")
    code, err = _run(capsys, "run", str(path), "--out", str(tmp_path / "o"))
    assert code == 2 and "not valid YAML" in err and "\n" not in err


def test_out_below_a_regular_file(tmp_path, pairs_file, capsys) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a directory")
    path = _recipe_file(tmp_path, pixel_recipe(pairs_file))
    code, err = _run(capsys, "run", path, "--out", str(blocker / "run"))
    assert code == 2 and "is a file, not a directory" in err


def test_out_is_a_foreign_directory(tmp_path, pairs_file, capsys) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    path = _recipe_file(tmp_path, pixel_recipe(pairs_file))
    code, err = _run(capsys, "run", path, "--out", str(tmp_path / "mine"), "--fresh")
    assert code == 2 and "not an imgdiff run directory" in err
    assert (tmp_path / "mine" / "thesis.tex").exists()


def test_malformed_line_and_corrupt_image_become_rejected_records(tmp_path, pairs_file, capsys) -> None:
    (pairs_file.parent / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pairs_file.open("a") as handle:
        handle.write('{"image_a": "0000_a.png", "image_b": \n')
        handle.write('{"image_a": "0000_a.png", "image_b": "broken.png"}\n')
        handle.write('{"image_a": "0000_a.png", "image_b": "missing.png"}\n')
    path = _recipe_file(tmp_path, pixel_recipe(pairs_file))
    code, _ = _run(capsys, "run", path, "--out", str(tmp_path / "o"))
    assert code == 0
    records = [json.loads(x) for x in (tmp_path / "o" / "records.jsonl").read_text().splitlines()]
    bad = {r["source_index"]: r for r in records if r["rejected_by"] == "source"}
    assert bad[24]["reason"].startswith("malformed_json:")
    assert bad[25]["reason"].startswith("corrupt_image: image_b 'broken.png'")
    assert bad[26]["reason"] == "missing_file: image_b 'missing.png' not found"
    stats = json.loads((tmp_path / "o" / "stats.json").read_text())
    assert stats["stages"][0]["rejected"] == {"corrupt_image": 1, "malformed_json": 1, "missing_file": 1}


def test_bad_limit_and_shard(tmp_path, pairs_file, capsys) -> None:
    path = _recipe_file(tmp_path, pixel_recipe(pairs_file))
    code, err = _run(capsys, "run", path, "--out", str(tmp_path / "o"), "--shard", "2/2")
    assert code == 2 and "0 <= I < N" in err
    code, err = _run(capsys, "run", path, "--out", str(tmp_path / "o"), "--limit", "-1")
    assert code == 2 and "--limit" in err


def test_recipes_list_and_show(capsys) -> None:
    assert main(["recipes", "list"]) == 0
    assert "pairs" in capsys.readouterr().out
    assert main(["recipes", "show", "pairs"]) == 0
    assert "type: pairs" in capsys.readouterr().out
    code, err = _run(capsys, "recipes", "show", "pair")
    assert code == 2 and "did you mean 'pairs'" in err


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--address", "127.0.0.1:1"], "go with --engine ray"),
        (["--engine", "ray", "--workers", "0"], "--workers 0: must be 1 or more"),
        (["--engine", "ray", "--gpus-per-worker", "-1"], "--gpus-per-worker -1.0: must be 0 or more"),
    ],
)
def test_ray_flags_are_checked_before_anything_runs(tmp_path, capsys, flags, says) -> None:
    code, err = _run(capsys, "run", "quickstart", "--out", str(tmp_path / "run"), "--limit", "2", *flags)
    assert code == 2 and says in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()
