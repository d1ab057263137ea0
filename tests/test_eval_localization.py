from __future__ import annotations

import json
from pathlib import Path

import pytest

from imgdiff.cli import main
from imgdiff.eval.localization import evaluate, match
from imgdiff.record import Record, Region, TruthBox


def _record(kind: str, truth: list, boxes: list, rejected_by: str | None = None) -> Record:
    record = Record(id=f"r{len(truth)}{len(boxes)}", source_index=0, seed=0, kind=kind)
    record.truth = [TruthBox(box=list(map(float, b))) for b in truth]
    record.regions = [Region(box=list(map(float, b)), source="diff") for b in boxes]
    if rejected_by:
        record.reject(rejected_by, "x: y")
    return record


def test_matching_is_one_to_one_greedy_highest_first() -> None:
    truth = [[0, 0, 10, 10], [20, 0, 30, 10]]
    predicted = [[0, 0, 10, 9], [1, 0, 10, 10], [20, 0, 30, 10], [50, 50, 60, 60]]
    assert match(predicted, truth) == [1.0, 0.9]  # the second box of truth 0 finds nothing left
    assert match([[0, 0, 10, 10]], [[0, 0, 10, 4]]) == []  # IoU 0.4 < 0.5


def test_scores_follow_the_definition() -> None:
    records = [
        _record("replacement", [[0, 0, 10, 10]], [[0, 0, 10, 10], [40, 40, 50, 50]]),
        _record("removal", [[0, 0, 10, 10]], [], rejected_by="regions"),
        _record("removal", [[0, 0, 10, 10]], [[0, 0, 8, 10]]),
        _record("distractor", [], [], rejected_by="pair_filter"),
        _record("distractor", [], [[0, 0, 5, 5]]),
        _record("unknown", [], [[0, 0, 5, 5]]),  # no truth: not scored
    ]
    scores = evaluate(records)
    assert scores["pairs"] == 3
    assert scores["precision"] == pytest.approx(2 / 3) and scores["recall"] == pytest.approx(2 / 3)
    assert scores["mean_iou"] == pytest.approx((1.0 + 0.8) / 2)
    assert scores["distractor_rejection"] == 0.5


def test_cli_json_and_a_run_without_truth(tmp_path: Path, pairs_file: Path, capsys) -> None:
    import imgdiff
    from conftest import pixel_recipe

    imgdiff.run(pixel_recipe(pairs_file), tmp_path / "run")
    assert main(["eval", "localization", str(tmp_path / "run"), "--json"]) == 2
    assert "no ground truth" in capsys.readouterr().err
    records = [_record("replacement", [[0, 0, 10, 10]], [[0, 0, 10, 10]])]
    (tmp_path / "run" / "records.jsonl").write_text("".join(json.dumps(r.to_dict()) + "\n" for r in records))
    assert main(["eval", "localization", str(tmp_path / "run"), "--json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert {"precision", "recall", "mean_iou", "pairs", "distractor_rejection"} <= out.keys()
    assert out["precision"] == out["recall"] == 1.0
    assert "not a finished run" not in captured.err  # a finished run: no warning
    stats_path = tmp_path / "run" / "stats.json"
    stats = json.loads(stats_path.read_text())
    stats_path.write_text(json.dumps({**stats, "complete": False}))
    assert main(["eval", "localization", str(tmp_path / "run"), "--json"]) == 0
    err = capsys.readouterr().err
    assert "is not a finished run" in err and "\n" not in err.strip()  # one line, the scores follow
