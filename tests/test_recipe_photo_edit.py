"""The built-in `photo-edit` recipe (photos -> edit -> instruction editor -> weight-free stages ->
export) on its tiny twin: the stand-in photos and a tiny InstructPix2Pix, end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image

import imgdiff
from imgdiff.cli import main
from imgdiff.recipe import builtin_recipes
from imgdiff.tiny import tiny_photo_recipe
from imgdiff.tiny.photos import PHOTOS, write_photos


def test_photo_edit_runs_end_to_end_on_the_tiny_twin(tmp_path: Path, tiny_models: Any) -> None:
    images, captions = write_photos(tmp_path / "photos")
    recipe = tiny_photo_recipe({"ip2p": tiny_models("ip2p")}, images, captions)
    generate = next(stage["generate"] for stage in recipe["stages"] if "generate" in stage)
    assert generate["preset"] == "instruct-pix2pix" and generate["editor"] == "ip2p"
    out = tmp_path / "run"
    result = imgdiff.run(recipe, out)
    funnel = {s["stage"]: s for s in result.stats["stages"]}
    assert list(funnel) == ["source", "edit", "generate", "pair_filter", "regions", "describe"]
    assert funnel["generate"]["in"] == funnel["generate"]["kept"] == len(PHOTOS)
    records = [r for r in imgdiff.load_records(out) if r.rejected_by != "edit"]
    for record in records:
        assert record.generation["instruction"].startswith("replace the ")
        with Image.open(out / record.images["a"]) as a, Image.open(out / record.images["b"]) as b:
            assert a.size == b.size == (96, 64)
        source = images / f"{record.source_index + 1:012d}.png"
        with Image.open(source) as photo, Image.open(out / record.images["a"]) as a:
            assert np.array_equal(np.asarray(photo), np.asarray(a))  # a is the photo's own pixels
        assert "pair_filter.outside_change" in record.scores
    assert result.stats["complete"]
    assert json.loads((out / "run.json").read_text())["recipe"]["source"]["type"] == "photos"


def test_photo_edit_is_a_builtin_recipe_that_names_its_editor(capsys: pytest.CaptureFixture[str]) -> None:
    raw = yaml.safe_load(builtin_recipes()["photo-edit"])
    assert raw["source"]["type"] == "photos" and raw["models"]["editor"]["role"] == "editor"
    assert main(["recipes", "show", "photo-edit"]) == 0
    assert "method: instruct" in capsys.readouterr().out
