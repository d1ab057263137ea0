"""The difference benchmark on a run with ground truth: `predict run:DIR --task locate|describe`
with scripted models, scored by `eval localization --pred` and `eval describe` to exact values."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import imgdiff
from imgdiff.cli import main
from imgdiff.eval.box_answers import parse_boxes
from imgdiff.models.openai_chat import png_data_url
from imgdiff.record import Record
from imgdiff.store import RunStore
from openai_server import ChatServer
from test_eval_predict import image_text, models_file, served


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Record]]:
    """A small demo run and its kept records by image a's data URL (how the server knows them)."""
    out = tmp_path_factory.mktemp("demo") / "run"
    imgdiff.run("quickstart", out, limit=12)
    store = RunStore(out)
    by_url = {}
    for record in (r for r in imgdiff.load_records(out) if r.status == "kept"):
        image = np.asarray(store.images.load(record, "a"))
        record.artifacts["size"] = image.shape[:2]  # (h, w), for the scripted answers
        by_url[png_data_url(image)] = record
    return out, by_url


def locate(tmp_path: Path, demo, answer: Callable[[Record, int, int], str], name: str, capsys) -> dict:
    out, by_url = demo

    def reply(body: dict) -> str:
        record = by_url[image_text(body)[0][0]]
        if not record.truth:
            return "No object changed."  # a kept distractor: nothing to locate
        height, width = record.artifacts["size"]
        return answer(record, width, height)

    with ChatServer(reply) as server:
        models = models_file(tmp_path, served(server.url))
        pred = tmp_path / f"{name}.jsonl"
        assert (
            main(["predict", f"run:{out}", "--task", "locate", "--models", str(models), "--out", str(pred)])
            == 0
        )
        assert len(server.requests) == len(by_url)
    capsys.readouterr()
    assert main(["eval", "localization", str(out), "--pred", str(pred), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def truth_box(record: Record) -> list[float]:
    return record.truth[0].box


def scored(demo) -> list[Record]:
    return [r for r in demo[1].values() if r.kind != "distractor" and r.truth]


def test_truth_boxes_in_every_form_score_iou_one(tmp_path: Path, demo, capsys) -> None:
    forms = {}

    def answer(record: Record, width: int, height: int) -> str:
        x1, y1, x2, y2 = truth_box(record)
        form = record.source_index % 4
        forms[record.id] = form
        if form == 0:
            return f"The box is [{x1 / width}, {y1 / height}, {x2 / width}, {y2 / height}]."
        if form == 1:
            return f"[{x1}, {y1}, {x2}, {y2}]"
        a, b, c, d = x1 * 1000 / width, y1 * 1000 / height, x2 * 1000 / width, y2 * 1000 / height
        if form == 2:
            return f"<ref>it</ref><box>({a},{b}),({c},{d})</box>"  # Qwen-VL
        return f"<ref>it</ref><box>[[{a}, {b}, {c}, {d}]]</box>"  # InternVL

    result = locate(tmp_path, demo, answer, "truth", capsys)
    pairs = scored(demo)
    assert result["pairs"] == len(pairs) >= 8
    assert result["accuracy_iou50"] == 1.0 and result["mean_iou"] == pytest.approx(1.0, abs=1e-9)
    assert result["unparseable"] == 0 and result["no_truth"] == len(demo[1]) - len(pairs)
    assert sum(result["box_forms"].values()) == len(pairs) and len(result["box_forms"]) >= 3
    kinds = {r.kind for r in pairs}
    assert set(result["per_kind"]) == kinds
    for kind in kinds:
        assert result["per_kind"][kind]["pairs"] == sum(r.kind == kind for r in pairs)
        assert result["per_kind"][kind]["accuracy_iou50"] == 1.0


def test_shifted_boxes_score_one_third_and_garbage_is_unparseable(tmp_path: Path, demo, capsys) -> None:
    def shifted(record: Record, width: int, height: int) -> str:
        # Half the box's width sideways, staying inside the image: IoU = (w/2 h) / (3/2 w h) = 1/3.
        x1, y1, x2, y2 = truth_box(record)
        dx = (x2 - x1) / 2 if x2 + (x2 - x1) / 2 <= width else -(x2 - x1) / 2
        assert x1 + dx >= 0 and x2 + dx <= width
        return f"[{x1 + dx}, {y1}, {x2 + dx}, {y2}]"

    result = locate(tmp_path, demo, shifted, "shifted", capsys)
    assert result["accuracy_iou50"] == 0.0 and result["mean_iou"] == pytest.approx(1 / 3, abs=1e-9)
    assert result["unparseable"] == 0

    result = locate(tmp_path, demo, lambda r, w, h: "They look the same to me.", "garbage", capsys)
    assert result["unparseable"] == result["pairs"] == len(scored(demo))
    assert result["accuracy_iou50"] == 0.0 and result["mean_iou"] == 0.0
    assert main(["eval", "localization", str(demo[0]), "--pred", str(tmp_path / "garbage.jsonl")]) == 0
    text = capsys.readouterr().out
    assert "accuracy_iou50         0.0000" in text and "unparseable            " in text


def test_describe_task_rule_and_caption_metrics(tmp_path: Path, demo, capsys, monkeypatch) -> None:
    from imgdiff.eval import captions

    monkeypatch.setattr(captions, "java_available", lambda: False)  # fast; the Java path is tested apart
    out, by_url = demo

    def reply(body: dict) -> str:
        record = by_url[image_text(body)[0][0]]
        accepted = [r.difference for r in record.regions if r.rejected_by is None and r.difference]
        return accepted[0] if record.source_index % 2 else "Something is different somewhere."

    with ChatServer(reply) as server:
        models = models_file(tmp_path, served(server.url))
        pred = tmp_path / "describe.jsonl"
        assert (
            main(["predict", f"run:{out}", "--task", "describe", "--models", str(models), "--out", str(pred)])
            == 0
        )
    capsys.readouterr()
    assert main(["eval", "describe", str(out), "--pred", str(pred), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    pairs = scored(demo)
    right = sum(r.source_index % 2 == 1 for r in pairs)  # the template sentence names the edit
    assert result["pairs"] == len(pairs) and result["describe_accuracy"] == pytest.approx(right / len(pairs))
    assert result["captions"]["tokenizer"] == "regex" and result["captions"]["BLEU-4"] > 0
    assert main(["eval", "localization", str(out), "--pred", str(pred)]) == 2  # describe answers, not locate
    assert "not answers of `predict run:DIR --task locate`" in capsys.readouterr().err


def test_missing_answers_are_listed(tmp_path: Path, demo, capsys) -> None:
    out, by_url = demo
    with ChatServer(lambda body: "[0.1, 0.1, 0.5, 0.5]") as server:
        models = models_file(tmp_path, served(server.url))
        pred = tmp_path / "part.jsonl"
        argv = ["predict", f"run:{out}", "--models", str(models), "--out", str(pred), "--limit", "3"]
        assert main(argv) == 0
    capsys.readouterr()
    assert main(["eval", "localization", str(out), "--pred", str(pred)]) == 2
    assert f"{len(by_url) - 3} id(s) only in the kept pairs" in capsys.readouterr().err
    assert main(["eval", "localization", str(out), "--pred", str(pred), "--allow-missing", "--json"]) == 0


@pytest.mark.parametrize(
    ("text", "boxes", "form"),
    [
        ("[0.1, 0.2, 0.5, 1.0]", [[20.0, 20.0, 100.0, 100.0]], "normalised"),
        ("box: [20, 20, 100, 100] and [150, 0, 160, 50]", [[20, 20, 100, 100], [150, 0, 160, 50]], "pixels"),
        ("<box>(100,200),(500,1000)</box>", [[20.0, 20.0, 100.0, 100.0]], "qwen-vl"),
        ("<|box_start|>(500,1000),(100,200)<|box_end|>", [[20.0, 20.0, 100.0, 100.0]], "qwen-vl"),
        ("<ref>cat</ref><box>[[100, 200, 500, 1000]]</box>", [[20.0, 20.0, 100.0, 100.0]], "internvl"),
        (
            "[[100, 200, 500, 1000], [0, 0, 50, 100]]",
            [[20.0, 20.0, 100.0, 100.0], [0.0, 0.0, 10.0, 10.0]],
            "internvl",
        ),
        ("[-10, 5, 900, 40]", [[0.0, 5.0, 200.0, 40.0]], "pixels"),  # clipped to the image
        ("[5, 5, 5, 40]", [], "pixels"),  # no area
        ("top left, I think", [], None),
        ("[1, 2, 3]", [], None),
    ],
)
def test_box_forms(text: str, boxes: list, form: str | None) -> None:
    found, found_form = parse_boxes(text, 200, 100)
    assert found == [[float(v) for v in b] for b in boxes]
    assert found_form == form
