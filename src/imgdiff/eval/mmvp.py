"""`imgdiff eval mmvp`: MMVP's pair accuracy and per-question accuracy, always both, named.

MMVP (`Questions.csv`: Index, Question, Options, Correct Answer; images `MMVP Images/<Index>.jpg`)
asks the same question about the two images of a pair: rows 1-2 are pair 1, rows 3-4 pair 2, and
so on. `pair_accuracy` counts a pair only when both its questions are answered right (random
guessing gives 25%); `question_accuracy` counts questions. Papers mix the two; this prints both.

The answer key has two known errors (METHOD.md section 6; corrected the same way by lmms-eval): the
correct answers of rows 99 and 100 belong to each other, and so do those of rows 279 and 280.
`corrected=True` (the default) swaps them back; the output says which key was used.

Answers are free text. `parse_answer` reads, in this order: an option letter standing alone or
marked as one ("(b)", "b)", "B.", "Option B", "answer: b", "The answer is (b)"), then the text of
exactly one option appearing as whole words ("Closed" for "(a) Open (b) Closed"). Anything else,
including an answer naming both options, is unparseable: counted, and scored as wrong.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imgdiff.errors import UsageError

KEY_CORRECTIONS = ((99, 100), (279, 280))  # rows whose correct answers are swapped in the key
_OPTION = re.compile(r"\(([a-z])\)\s*(.*?)\s*(?=\([a-z]\)|$)", re.IGNORECASE | re.DOTALL)
_MARKED_LETTER = (
    re.compile(r"^\s*\(?([a-z])\)?\s*[.:)]?\s*$", re.IGNORECASE),  # the whole answer is a letter
    re.compile(r"^\s*\(?([a-z])[.:)]\s", re.IGNORECASE),  # "B. Closed", "(b) Closed", "b) closed"
    re.compile(r"\(([a-z])\)", re.IGNORECASE),  # "(b)" anywhere
    # "Option B", "answer: b", "the answer is b." (a letter then punctuation or the end, so that
    # "the answer is a cat" is not read as option a)
    re.compile(r"\b(?:option|answer|choice)\s*(?:is|:)?\s*\(?([a-z])\)?(?=\s*(?:[.,;:!]|$))", re.IGNORECASE),
)


@dataclass(frozen=True)
class Question:
    index: int  # the CSV's 1-based Index
    question: str
    options: dict[str, str]  # letter (lower case) -> option text
    answer: str  # the correct letter, after any key correction

    @property
    def pair(self) -> int:
        return (self.index + 1) // 2


def read_questions(folder: Path, corrected: bool = True) -> list[Question]:
    """MMVP's questions from `folder/Questions.csv`, with the key corrections unless told not to."""
    path = folder / "Questions.csv" if folder.is_dir() else folder
    if not path.is_file():
        raise UsageError(f"MMVP questions not found: '{path}' (expected the MMVP folder with Questions.csv)")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    needed = {"Index", "Question", "Options", "Correct Answer"}
    if not rows or not needed <= set(rows[0]):
        raise UsageError(f"'{path}': expected the columns {', '.join(sorted(needed))}")
    questions = {}
    for number, row in enumerate(rows, 2):
        try:
            index = int(row["Index"])
        except ValueError:
            raise UsageError(f"'{path}':{number}: Index {row['Index']!r} is not a number") from None
        options = parse_options(row["Options"])
        answer = parse_answer(row["Correct Answer"], options)
        if answer is None:
            raise UsageError(f"'{path}':{number}: cannot read the correct answer {row['Correct Answer']!r}")
        questions[index] = Question(index, row["Question"].strip(), options, answer)
    if corrected:
        for first, second in KEY_CORRECTIONS:
            if first in questions and second in questions:
                a, b = questions[first], questions[second]
                questions[first] = Question(a.index, a.question, a.options, b.answer)
                questions[second] = Question(b.index, b.question, b.options, a.answer)
    return [questions[i] for i in sorted(questions)]


def parse_options(text: str) -> dict[str, str]:
    """'(a) Open (b) Closed' -> {'a': 'Open', 'b': 'Closed'}."""
    return {letter.lower(): body.strip() for letter, body in _OPTION.findall(text)}


def parse_answer(text: str, options: dict[str, str]) -> str | None:
    """The option letter a free-text answer gives, or None when it cannot be read (see above)."""
    for pattern in _MARKED_LETTER:
        found = {m.lower() for m in pattern.findall(text)} & set(options)
        if len(found) == 1:
            return found.pop()
        if len(found) > 1:
            return None
    named = [
        letter
        for letter, body in options.items()
        if body and re.search(rf"(?<!\w){re.escape(body)}(?!\w)", text, re.IGNORECASE)
    ]
    return named[0] if len(named) == 1 else None


def evaluate(
    questions: list[Question], answers: dict[str, str], allow_missing: bool = False
) -> dict[str, Any]:
    """Pair and question accuracy (%) of `answers` ({Index as a string: free text})."""
    by_id = {str(q.index): q for q in questions}
    unknown = sorted(set(answers) - set(by_id), key=_natural)
    missing = sorted(set(by_id) - set(answers), key=_natural)
    if unknown:
        raise UsageError(
            f"{len(unknown)} answer id(s) are not MMVP question indices: {', '.join(unknown[:10])}"
        )
    if missing and not allow_missing:
        raise UsageError(
            f"{len(missing)} question(s) have no answer: {', '.join(missing[:10])}"
            f"{' ...' if len(missing) > 10 else ''} (pass --allow-missing to score them as wrong)"
        )
    right: dict[int, bool] = {}
    unparseable = 0
    for q in questions:
        text = answers.get(str(q.index))
        letter = parse_answer(text, q.options) if text is not None else None
        unparseable += text is not None and letter is None
        right[q.index] = letter == q.answer
    pairs: dict[int, list[bool]] = {}
    for q in questions:
        pairs.setdefault(q.pair, []).append(right[q.index])
    incomplete = [p for p, marks in pairs.items() if len(marks) != 2]
    if incomplete:
        raise UsageError(f"MMVP pairs need two questions each; pair(s) {incomplete[:5]} have not")
    return {
        "pair_accuracy": 100 * sum(all(m) for m in pairs.values()) / len(pairs),
        "question_accuracy": 100 * sum(right.values()) / len(right),
        "pairs": len(pairs),
        "questions": len(right),
        "unparseable": unparseable,
        "missing": len(missing),
    }


def read_answers(path: Path) -> dict[str, str]:
    """{Index: answer text} from an `imgdiff predict mmvp` file or a JSON object of that form."""
    import json

    from imgdiff.eval.predictions import is_predictions_file, read_predictions

    if is_predictions_file(path):
        predictions = read_predictions(path)
        if predictions.header.get("benchmark") != "mmvp":
            raise UsageError(f"'{path}' holds {predictions.header.get('benchmark')} answers, not MMVP's")
        return predictions.answers()
    if not path.is_file():
        raise UsageError(f"predictions file '{path}' not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"'{path}' is not JSON ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise UsageError(f"'{path}': expected an imgdiff predictions file or a JSON {{Index: answer text}}")
    return {str(k): v for k, v in data.items()}


def _natural(text: str) -> tuple[int, str]:
    return (int(text), "") if text.isdigit() else (1 << 62, text)


def report(result: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"pair_accuracy      {result['pair_accuracy']:6.2f} %  (both questions of a pair right)",
            f"question_accuracy  {result['question_accuracy']:6.2f} %",
            f"pairs: {result['pairs']}; questions: {result['questions']}; unparseable answers: "
            f"{result['unparseable']}; missing answers: {result['missing']}",
            f"answer key: {result['answer_key']}",
        ]
    )
