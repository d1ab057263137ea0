"""`imgdiff eval mmvp`: pair and question accuracy, both named; the key corrections; free-text answers."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgdiff.cli import main
from imgdiff.eval.mmvp import parse_answer, parse_options, read_questions

# Six pairs: rows 1-8 and the two pairs whose key is wrong in the release (99/100, 279/280).
ROWS = [1, 2, 3, 4, 5, 6, 7, 8, 99, 100, 279, 280]
KEY = {1: "a", 2: "b", 3: "a", 4: "b", 5: "b", 6: "a", 7: "a", 8: "b", 99: "a", 100: "b", 279: "b", 280: "a"}


def write_mmvp(root: Path, rows: list[int] = ROWS, key: dict[int, str] = KEY) -> Path:
    """An MMVP folder: Questions.csv as released (with the two swapped key pairs) and one small
    image per question."""
    (root / "MMVP Images").mkdir(parents=True, exist_ok=True)
    with (root / "Questions.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Index", "Question", "Options", "Correct Answer"])
        for index in rows:
            writer.writerow(
                [
                    index,
                    f"Is the door open in picture {index}?",
                    "(a) Open (b) Closed",
                    f"({key.get(index, 'ab'[index % 2 == 0])})",
                ]
            )
            pixels = np.full((40, 48, 3), (index * 37) % 256, np.uint8)
            Image.fromarray(pixels).save(root / "MMVP Images" / f"{index}.jpg")
    return root


def test_questions_pairs_and_the_key_corrections(tmp_path: Path) -> None:
    folder = write_mmvp(tmp_path / "mmvp")
    released = {q.index: q.answer for q in read_questions(folder, corrected=False)}
    corrected = {q.index: q for q in read_questions(folder)}
    assert released == KEY
    assert [corrected[i].answer for i in (99, 100, 279, 280)] == ["b", "a", "a", "b"]
    assert corrected[100].pair == corrected[99].pair == 50 and corrected[3].pair == 2
    assert corrected[1].options == {"a": "Open", "b": "Closed"}


def run_eval(tmp_path: Path, answers: dict[str, str], *extra: str) -> dict:
    pred = tmp_path / "answers.json"
    pred.write_text(json.dumps(answers))
    folder = write_mmvp(tmp_path / "mmvp")
    assert main(["eval", "mmvp", "--pred", str(pred), "--questions", str(folder), "--json", *extra]) == 0
    return pred, folder


def test_corrections_change_pair_accuracy(tmp_path: Path, capsys) -> None:
    # The model answers what is true: the corrected key. Pairs 1-4 all right but row 4; the two
    # corrected pairs right only under the corrected key.
    truth = {
        1: "a",
        2: "b",
        3: "a",
        4: "a",
        5: "b",
        6: "a",
        7: "a",
        8: "b",
        99: "b",
        100: "a",
        279: "a",
        280: "b",
    }
    answers = {str(i): f"({letter})" for i, letter in truth.items()}
    pred, folder = run_eval(tmp_path, answers)
    corrected = json.loads(capsys.readouterr().out)
    assert corrected["pair_accuracy"] == pytest.approx(100 * 5 / 6)
    assert corrected["question_accuracy"] == pytest.approx(100 * 11 / 12)
    assert (
        main(["eval", "mmvp", "--pred", str(pred), "--questions", str(folder), "--json", "--no-corrections"])
        == 0
    )
    released = json.loads(capsys.readouterr().out)
    assert released["pair_accuracy"] == pytest.approx(100 * 3 / 6)
    assert released["question_accuracy"] == pytest.approx(100 * 7 / 12)
    assert released["answer_key"] == "as released"
    assert main(["eval", "mmvp", "--pred", str(pred), "--questions", str(folder)]) == 0
    text = capsys.readouterr().out
    assert " 83.33 %" in text.splitlines()[0] and text.startswith("pair_accuracy")
    assert text.splitlines()[1].startswith("question_accuracy") and " 91.67 %" in text.splitlines()[1]


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("(a)", "a"),
        ("B", "b"),
        ("b.", "b"),
        ("B. Closed", "b"),
        ("(b) Closed", "b"),
        ("The answer is (a).", "a"),
        ("Answer: b", "b"),
        ("option A", "a"),
        ("The door is closed.", "b"),
        ("It looks OPEN to me", "a"),
        ("The answer is a closed door", "b"),  # "a" is an article here, not option a
        ("Both open and closed", None),  # names both options
        ("I cannot tell", None),
        ("(c)", None),  # not an option
        ("", None),
        ("reopened", None),  # option text only as a whole word
    ],
)
def test_free_text_answers(text: str, letter: str | None) -> None:
    assert parse_answer(text, parse_options("(a) Open (b) Closed")) == letter


def test_unparseable_and_missing_are_counted(tmp_path: Path, capsys) -> None:
    answers = {str(i): "(a)" for i in ROWS}
    answers["2"] = "no idea"
    del answers["280"]
    pred = tmp_path / "answers.json"
    pred.write_text(json.dumps(answers))
    folder = write_mmvp(tmp_path / "mmvp")
    args = ["eval", "mmvp", "--pred", str(pred), "--questions", str(folder), "--json"]
    assert main(args) == 2
    assert "1 question(s) have no answer: 280" in capsys.readouterr().err
    assert main([*args, "--allow-missing"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["unparseable"] == 1 and result["missing"] == 1 and result["questions"] == 12
    pred.write_text(json.dumps({**answers, "281": "(a)"}))
    assert main(args) == 2
    assert "not MMVP question indices: 281" in capsys.readouterr().err
