"""`predict run:DIR --split val`: a model is asked about the pairs of one split of the run's export
only (held out from a model trained on `train`), and `eval` scores those answers on that split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from export_data import make_run
from imgdiff.cli import main
from imgdiff.eval.predictions import read_predictions
from imgdiff.export import export_run
from openai_server import ChatServer
from test_eval_predict import models_file, served


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = make_run(tmp_path_factory.mktemp("held_out"))
    # `val` holds two pairs (their ids decide); --where drops the removals' second boxes
    options = {"split": {"train": 0.5, "val": 0.5}, "where": "region.index == 0 or kind != 'removal'"}
    export_run(out, ["llava"], options=options)
    return out


def _val_pairs(run: Path) -> set[str]:
    entries = json.loads((run / "export" / "llava" / "val.json").read_text())
    return {entry["id"].rsplit("_", 1)[0] for entry in entries}


def test_predict_asks_about_one_split_and_eval_scores_it(run: Path, tmp_path: Path, capsys) -> None:
    pred = tmp_path / "val.jsonl"
    with ChatServer(lambda body: "[0.1, 0.1, 0.5, 0.5]") as server:
        models = models_file(tmp_path, served(server.url))
        argv = ["predict", f"run:{run}", "--split", "val", "--models", str(models), "--out", str(pred)]
        assert main(argv) == 0
        assert len(server.requests) == len(_val_pairs(run)) == 2
    predictions = read_predictions(pred)
    assert set(predictions.items) == _val_pairs(run)
    assert predictions.header["export_split"] == "val"
    assert predictions.header["export"] == str((run / "export" / "llava").resolve())
    capsys.readouterr()
    # scored on the split: no kept pair of `train` is reported missing
    assert main(["eval", "localization", str(run), "--pred", str(pred), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["no_truth"] == 2


def test_a_split_no_export_has_and_a_folder_that_is_no_export_are_one_line(
    run: Path, tmp_path: Path, capsys
) -> None:
    models = models_file(tmp_path, served("http://127.0.0.1:9/v1"))
    base = ["predict", f"run:{run}", "--models", str(models), "--out", str(tmp_path / "p.jsonl")]
    assert main([*base, "--split", "test"]) == 2
    err = capsys.readouterr().err.strip()
    assert "has no split 'test'" in err and len(err.splitlines()) == 1
    assert main([*base, "--split", "val", "--export", str(tmp_path)]) == 2
    assert "is not an export folder" in capsys.readouterr().err
    assert main(["predict", "mmvp", "--models", str(models), "--out", "x", "--export", "y"]) == 2
