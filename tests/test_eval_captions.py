"""`imgdiff eval captions`: the same numbers as pycocoevalcap's scorers called by hand, every input
format detected and named, ids on one side only, and the Java-free fallback."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from imgdiff.cli import main
from imgdiff.eval import captions
from imgdiff.eval.caption_formats import read_captions

OBJECTS = ["cat", "dog", "red car", "blue bus", "apple", "bench", "small tree", "white cup", "man", "chair"]
PLACES = ["on the left", "in the middle", "at the top", "near the door", "on the table", "by the window"]


def make_fixture(n: int = 36, seed: int = 3) -> tuple[dict[str, list[str]], dict[str, str]]:
    """n pairs with 3-5 references each and one prediction, sharing words in varying amounts
    (some with punctuation and capitals, which tokenizers must handle)."""
    rng = random.Random(seed)
    refs, preds = {}, {}
    for i in range(n):
        old, new = rng.sample(OBJECTS, 2)
        place = rng.choice(PLACES)
        forms = [
            f"The {old} {place} was replaced by a {new}.",
            f"A {new} is {place} instead of the {old}",
            f"the {old} is gone, and there's a {new} {place}!",
            f"Someone swapped the {old} for a {new}.",
            f"{new.capitalize()} appears {place}; no {old} anymore.",
        ]
        refs[str(1000 + i)] = rng.sample(forms, rng.randint(3, 5))
        preds[str(1000 + i)] = rng.choice(
            [f"The {old} was replaced by a {new}.", f"there is a {new} {place}", f"A {rng.choice(OBJECTS)}."]
        )
    return refs, preds


def write_formats(root: Path, refs: dict[str, list[str]], preds: dict[str, str]) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    files = {
        "coco": {
            "images": [{"id": int(i)} for i in refs],
            "annotations": [{"image_id": int(i), "id": k, "caption": s} for k, (i, ss) in
                            enumerate((i, ss) for i, ss in refs.items()) for s in ss],
        },
        "coco-results": [{"image_id": int(i), "caption": p} for i, p in preds.items()],
        "spot-the-diff": [{"img_id": i, "sentences": ss} for i, ss in refs.items()],
        "image-edit-request": [{"uid": i, "img0": f"{i}_0.png", "img1": f"{i}_1.png", "sents": ss}
                               for i, ss in refs.items()],
        "dict": {i: [p] for i, p in preds.items()},
    }  # fmt: skip
    paths = {}
    for name, data in files.items():
        paths[name] = root / f"{name}.json"
        paths[name].write_text(json.dumps(data))
    return paths


@pytest.fixture
def fixture_files(tmp_path: Path) -> tuple[dict[str, list[str]], dict[str, str], dict[str, Path]]:
    refs, preds = make_fixture()
    return refs, preds, write_formats(tmp_path, refs, preds)


def test_every_format_is_detected_and_read_the_same(fixture_files) -> None:
    refs, preds, paths = fixture_files
    for name in ("coco", "spot-the-diff", "image-edit-request"):
        read, found = read_captions(paths[name])
        assert found == name and read == refs
    for name in ("coco-results", "dict"):
        read, found = read_captions(paths[name])
        assert found == name and read == {i: [p] for i, p in preds.items()}
    (paths["dict"].parent / "bad.json").write_text(json.dumps([{"text": "x"}]))
    assert main(["eval", "captions", "--pred", str(paths["dict"].parent / "bad.json"),
                 "--refs", str(paths["coco"])]) == 2  # fmt: skip


def by_hand(refs: dict[str, list[str]], preds: dict[str, str], tokenize) -> dict[str, float]:
    """pycocoevalcap's scorers called directly, x100 (one tokenizer call: one Java start)."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    both = tokenize({**{f"r{i}": ss for i, ss in refs.items()}, **{f"p{i}": [p] for i, p in preds.items()}})
    gts, res = {i: both[f"r{i}"] for i in refs}, {i: both[f"p{i}"] for i in refs}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    out = {f"BLEU-{n + 1}": 100 * bleu[n] for n in range(4)}
    out["ROUGE-L"] = 100 * Rouge().compute_score(gts, res)[0]
    out["CIDEr-D"] = 100 * Cider().compute_score(gts, res)[0]
    if tokenize is ptb:
        from pycocoevalcap.meteor.meteor import Meteor

        out["METEOR"] = 100 * Meteor().compute_score(gts, res)[0]
    return out


def ptb(sentences: dict[str, list[str]]) -> dict[str, list[str]]:
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    return PTBTokenizer().tokenize({i: [{"caption": s} for s in ss] for i, ss in sentences.items()})


@pytest.mark.skipif(shutil.which("java") is None, reason="needs Java (CI has it)")
def test_equals_pycocoevalcap_by_hand_with_java(fixture_files, capsys) -> None:
    refs, preds, paths = fixture_files
    expected = by_hand(refs, preds, ptb)
    assert main(["eval", "captions", "--pred", str(paths["coco-results"]), "--refs", str(paths["coco"]),
                 "--json"]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert result["tokenizer"] == "ptb" and result["pairs"] == len(refs)
    assert result["formats"] == {"predictions": "coco-results", "references": "coco"}
    assert set(expected) == set(captions.METRICS)
    for name, value in expected.items():
        assert abs(result[name] - value) <= 1e-9, name
    assert 0 < result["BLEU-4"] < result["BLEU-1"] < 100 and result["METEOR"] > 0


def test_without_java_regex_tokens_and_meteor_unavailable(fixture_files, monkeypatch, capsys) -> None:
    refs, preds, paths = fixture_files
    monkeypatch.setattr(captions, "java_available", lambda: False)
    expected = by_hand(
        refs, preds, lambda s: {i: [captions.regex_tokenize(x) for x in v] for i, v in s.items()}
    )
    assert (
        main(["eval", "captions", "--pred", str(paths["dict"]), "--refs", str(paths["spot-the-diff"])]) == 0
    )
    text = capsys.readouterr().out
    assert "tokenizer: regex" in text and "METEOR   unavailable" in text
    assert "predictions format: dict; references format: spot-the-diff" in text
    for name, value in expected.items():  # every number after its metric's name
        assert f"{name:<8} {value:7.2f}" in text
    assert main(["eval", "captions", "--pred", str(paths["dict"]), "--refs", str(paths["spot-the-diff"]),
                 "--tokenizer", "ptb"]) == 2  # fmt: skip
    assert "needs Java" in capsys.readouterr().err
    assert captions.regex_tokenize("Don't  move the RED car, please!") == "don t move the red car please"


def test_ids_on_one_side_are_listed_and_fail_unless_allowed(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(captions, "java_available", lambda: False)
    refs, preds = make_fixture(8)
    preds.pop("1003")
    preds["9999"] = "a stray prediction"
    paths = write_formats(tmp_path, refs, preds)
    args = ["eval", "captions", "--pred", str(paths["dict"]), "--refs", str(paths["image-edit-request"])]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "1 id(s) only in the predictions: 9999" in err and "1 id(s) only in the references: 1003" in err
    assert main([*args, "--allow-missing", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["pairs"] == 7 and result["METEOR"] is None
    assert result["only_in_predictions"] == ["9999"] and result["only_in_references"] == ["1003"]
    both = [i for i in preds if i in refs]
    regex = lambda s: {i: [captions.regex_tokenize(x) for x in v] for i, v in s.items()}  # noqa: E731
    expected = by_hand({i: refs[i] for i in both}, {i: preds[i] for i in both}, regex)
    assert abs(result["CIDEr-D"] - expected["CIDEr-D"]) <= 1e-9
