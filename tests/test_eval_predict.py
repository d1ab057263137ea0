"""`imgdiff predict`: benchmarks read from local folders, answers through the OpenAI-compatible
backend (a real local server that counts requests) and the tiny LLaVA-NeXT in-process, files the
`eval` commands read, and resume after a kill without asking finished items again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

from imgdiff.cli import main
from imgdiff.eval.predictions import read_predictions
from openai_server import ChatServer
from test_eval_mmvp import write_mmvp

SRC = Path(__file__).resolve().parents[1] / "src"


def models_file(root: Path, entry: dict[str, Any]) -> Path:
    path = root / "models.yaml"
    path.write_text(yaml.safe_dump({"models": {"vl": entry}}))
    return path


def served(url: str) -> dict[str, Any]:
    return {"role": "vl_generator", "backend": "openai", "base_url": url, "model": "served"}


def image_text(body: dict) -> tuple[list[str], str]:
    """The image data URLs and the text of a request's user turn."""
    parts = body["messages"][-1]["content"]
    urls = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    return urls, next(p["text"] for p in parts if p["type"] == "text")


def write_pair_images(folder: Path, names: list[str], seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in names:
        Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(folder / name)


def test_spot_the_diff_and_image_edit_request_answers_score_as_captions(tmp_path: Path, capsys) -> None:
    std = tmp_path / "std"
    (std / "annotations").mkdir(parents=True)
    refs = [{"img_id": str(i), "sentences": [f"the car {i} is gone", "a person walks"]} for i in (1, 2, 3)]
    (std / "annotations" / "test.json").write_text(json.dumps(refs))
    write_pair_images(
        std / "resized_images", [f"{i}.png" for i in (1, 2, 3)] + [f"{i}_2.png" for i in (1, 2, 3)], 0
    )
    ier = tmp_path / "ier"
    entries = [
        {"uid": f"u{i}", "img0": f"{i}_a.jpg", "img1": f"{i}_b.jpg", "sents": ["make it red"]} for i in (1, 2)
    ]
    (ier / "images").mkdir(parents=True)
    (ier / "test.json").write_text(json.dumps(entries))
    write_pair_images(ier / "images", [e["img0"] for e in entries] + [e["img1"] for e in entries], 1)

    with ChatServer(lambda body: f"{len(image_text(body)[0])} images: the car is gone") as server:
        models = models_file(tmp_path, served(server.url))
        for bench, data, refs_file in (
            ("spot-the-diff", std, std / "annotations" / "test.json"),
            ("image-edit-request", ier, ier / "test.json"),
        ):
            out = tmp_path / f"{bench}.jsonl"
            args = ["predict", bench, "--data", str(data), "--models", str(models), "--out", str(out)]
            assert main(args) == 0
            written = read_predictions(out)
            assert (
                written.header["benchmark"] == bench and written.header["prompt"]
            )  # prompts in the metadata
            assert {line["answer"] for line in written.items.values()} == {"2 images: the car is gone"}
            assert all(line["prompt"] == written.header["prompt"] for line in written.items.values())
            capsys.readouterr()
            assert (
                main(
                    ["eval", "captions", "--pred", str(out), "--refs", str(refs_file), "--tokenizer", "regex"]
                )
                == 0
            )
            text = capsys.readouterr().out
            assert f"predictions format: imgdiff; references format: {bench}" in text
            assert "CIDEr-D" in text and "ROUGE-L" in text
        assert len(server.requests) == 5


def test_predict_mmvp_with_the_tiny_llava_next(tmp_path: Path, tiny_models, capsys) -> None:
    folder = write_mmvp(tmp_path / "mmvp", rows=[1, 2, 3, 4])
    models = models_file(tmp_path, tiny_models("llava"))
    out = tmp_path / "mmvp.jsonl"
    args = ["predict", "mmvp", "--data", str(folder), "--models", str(models), "--out", str(out)]
    assert main([*args, "--batch-size", "3", "--max-new-tokens", "4"]) == 0
    written = read_predictions(out)
    assert sorted(written.items, key=int) == ["1", "2", "3", "4"]
    assert "Is the door open in picture 3?\n(a) Open (b) Closed\nAnswer with" in written.items["3"]["prompt"]
    assert written.items["1"]["size"] == [48, 40] and written.header["model"]["role"] == "vl_generator"
    capsys.readouterr()
    questions = ["--questions", str(folder), "--json"]
    assert main(["eval", "mmvp", "--pred", str(out), *questions]) == 0
    result = json.loads(capsys.readouterr().out)  # random weights: any answer, every one counted
    assert result["questions"] == 4 and result["pairs"] == 2 and 0 <= result["unparseable"] <= 4
    assert main([*args, "--batch-size", "3", "--max-new-tokens", "4"]) == 0  # all answered: nothing to do
    assert "reused 4, asked 0" in capsys.readouterr().out
    assert main([*args, "--max-new-tokens", "5"]) == 2  # asked differently: no mixing
    assert "generation changed" in capsys.readouterr().err


def _answer_lines(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(1 for line in path.read_bytes().split(b"\n")[1:] if line.endswith(b"}"))


def test_killed_and_rerun_finishes_without_asking_again(tmp_path: Path, capsys) -> None:
    folder = write_mmvp(tmp_path / "mmvp", rows=list(range(1, 21)))

    def answer(body: dict) -> str:
        time.sleep(0.15)  # slow enough to be killed part-way
        text = image_text(body)[1]
        return "(a)" if "picture 1" in text else "Closed"

    with ChatServer(answer) as server:
        models = models_file(tmp_path, served(server.url))
        out = tmp_path / "answers.jsonl"
        args = ["predict", "mmvp", "--data", str(folder), "--models", str(models), "--out", str(out)]
        env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        child = subprocess.Popen([sys.executable, "-m", "imgdiff", *args, "--batch-size", "2"], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 60
        while _answer_lines(out) < 4 and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait()
        kept = read_predictions(out).items
        assert 4 <= len(kept) < 20, "the kill came too late to test anything"
        asked_before = len(server.requests)
        assert main([*args, "--batch-size", "2"]) == 0
        rerun = server.requests[asked_before:]
        asked_again = {image_text(body)[1].split("picture ")[1].split("?")[0] for body in rerun}
        assert asked_again.isdisjoint(kept) and len(rerun) == 20 - len(kept)  # finished items not asked again
    finished = read_predictions(out)
    assert sorted(finished.items, key=int) == [str(i) for i in range(1, 21)]
    expected = {str(i): "(a)" if str(i).startswith("1") else "Closed" for i in range(1, 21)}
    assert finished.answers() == expected  # the same predictions as one uninterrupted run gives
    assert "reused" in capsys.readouterr().out


def test_bad_benchmarks_and_models_are_one_line_errors(tmp_path: Path, capsys) -> None:
    models = models_file(tmp_path, served("http://127.0.0.1:9/v1"))
    common = ["--models", str(models), "--out", str(tmp_path / "p.jsonl")]
    data = ["--data", str(tmp_path)]
    for argv, message in (
        (["mmvpp", *data], "unknown benchmark"),
        (["mmvp"], "needs --data"),
        (["mmvp", *data], "Questions.csv"),
        ([f"run:{tmp_path}"], "not an imgdiff run"),
        (["mmvp", *data, "--model", "x"], "no model entry 'x'"),
    ):
        assert main(["predict", *argv, *common]) == 2, argv
        assert message in capsys.readouterr().err


def test_unreadable_image_is_an_error_line_not_a_crash(tmp_path: Path) -> None:
    folder = write_mmvp(tmp_path / "mmvp", rows=[1, 2])
    (folder / "MMVP Images" / "2.jpg").write_bytes(b"not a jpeg")
    with ChatServer(["(a)"]) as server:
        models = models_file(tmp_path, served(server.url))
        out = tmp_path / "p.jsonl"
        assert (
            main(["predict", "mmvp", "--data", str(folder), "--models", str(models), "--out", str(out)]) == 0
        )
        assert len(server.requests) == 1
    lines = read_predictions(out).items
    assert lines["1"]["answer"] == "(a)" and "cannot read image" in lines["2"]["error"]


def test_a_line_cut_by_a_kill_is_skipped_and_cut_off(tmp_path: Path) -> None:
    from imgdiff.eval.predictions import PredictionsWriter

    path = tmp_path / "p.jsonl"
    writer = PredictionsWriter(path, {"benchmark": "x"})
    writer.append([{"id": "1", "answer": "a"}, {"id": "2", "answer": "b"}])
    writer.close()
    with path.open("ab") as handle:
        handle.write(b'{"id": "3", "ans')  # a kill in the middle of a batch's write
    assert set(read_predictions(path).items) == {"1", "2"}
    PredictionsWriter(path, {"benchmark": "x"}).append([{"id": "3", "answer": "c"}])
    assert read_predictions(path).answers() == {"1": "a", "2": "b", "3": "c"}
    path.write_bytes(b'{"imgdiff_predictions": 1, "bench')  # killed while writing the header
    PredictionsWriter(path, {"benchmark": "x"}).append([{"id": "9", "answer": "z"}])
    assert read_predictions(path).header["benchmark"] == "x" and read_predictions(path).answers() == {
        "9": "z"
    }
