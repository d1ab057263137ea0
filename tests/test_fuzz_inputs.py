"""Fuzz: random and mutated recipes, pairs lines, captions and COCO files through the CLI.

Whatever the input, the user never sees a traceback: the command exits 0 (bad items become
rejected records) or 2 with one line on stderr. In-process `main([...])` keeps it fast (an escaping
exception fails the test); a few subprocess runs check the real entry point. The `slow` variant
tries ten times as many inputs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz_inputs import coco_files, dump, json_values, mutated_text, replace_somewhere, write_images
from imgdiff.cli import main

TRIED: Counter[str] = Counter()  # inputs tried per class, for the summary printed at the end
EXITS: Counter[int] = Counter()
# The fast tests draw the same inputs every time (a CI failure can be rerun); the slow one explores.
FAST = settings(
    max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True
)
SLOW = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), database=None)

VALID_RECIPE = """\
seed: 0
batch_size: 4
source: {type: pairs, path: pairs.jsonl}
stages:
  - pair_filter: {method: pixel, similarity_min: 0.5, changed_area_max: 0.5}
  - regions: {method: pixel, max_regions: 3, nms_iou: 0.5}
  - describe: {method: template}
"""
VALID_LINE = {
    "image_a": "a.png",
    "image_b": "b.png",
    "caption_a": "a cat",
    "edit": {"old": "cat", "new": "dog"},
}


def _call(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    """Run the CLI in-process; assert exit 0, or exit 2 with one line and no traceback."""
    code = main(args)
    EXITS[code] += 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert code in (0, 2), (code, err)
    if code == 2:
        lines = [line for line in err.splitlines() if line.startswith("imgdiff: error:")]
        assert len(lines) == 1, err


def _workdir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="imgdiff-fuzz-")


def _recipe_case(capsys: pytest.CaptureFixture[str], text: bytes) -> None:
    TRIED["recipe"] += 1
    with _workdir() as tmp:
        root = Path(tmp)
        write_images(root)
        (root / "pairs.jsonl").write_text(json.dumps(VALID_LINE) + "\n")
        (root / "recipe.yaml").write_bytes(text)
        cwd = os.getcwd()
        os.chdir(root)  # the recipe's relative source path
        try:
            _call(capsys, ["run", "recipe.yaml", "--out", "run", "--dry-run"])
        finally:
            os.chdir(cwd)


def _pairs_case(capsys: pytest.CaptureFixture[str], lines: list[str]) -> None:
    TRIED["pairs"] += 1
    with _workdir() as tmp:
        root = Path(tmp)
        write_images(root / "data")
        (root / "data" / "pairs.jsonl").write_text("\n".join([json.dumps(VALID_LINE), *lines]) + "\n")
        recipe = yaml.safe_load(VALID_RECIPE)
        recipe["source"]["path"] = str(root / "data" / "pairs.jsonl")
        (root / "recipe.yaml").write_text(yaml.safe_dump(recipe))
        _call(capsys, ["run", str(root / "recipe.yaml"), "--out", str(root / "run"), "--no-progress"])


def _captions_case(capsys: pytest.CaptureFixture[str], suffix: str, content: bytes) -> None:
    TRIED["captions"] += 1
    with _workdir() as tmp:
        root = Path(tmp)
        (root / f"captions{suffix}").write_bytes(content)
        recipe = {"source": {"type": "captions", "path": str(root / f"captions{suffix}"), "per_image": None}}
        (root / "recipe.yaml").write_text(yaml.safe_dump(recipe))
        _call(capsys, ["run", str(root / "recipe.yaml"), "--out", str(root / "run"), "--no-progress"])


def _coco_case(capsys: pytest.CaptureFixture[str], instances: bytes, captions: bytes) -> None:
    TRIED["coco"] += 1
    with _workdir() as tmp:
        root = Path(tmp)
        coco_files(root / "images")
        (root / "instances.json").write_bytes(instances)
        (root / "captions.json").write_bytes(captions)
        source = {"type": "copy_paste", "images": str(root / "images"), "edits_per_image": 2}
        source |= {"instances": str(root / "instances.json"), "captions": str(root / "captions.json")}
        (root / "recipe.yaml").write_text(yaml.safe_dump({"source": source}))
        _call(capsys, ["run", str(root / "recipe.yaml"), "--out", str(root / "run"), "--no-progress"])


# -- strategies -------------------------------------------------------------------------------------
recipe_texts = st.one_of(
    mutated_text(VALID_RECIPE),
    st.builds(
        lambda value: yaml.safe_dump(value).encode(),
        st.builds(
            lambda base, draw_key, value: {**base, draw_key: value},
            st.just(yaml.safe_load(VALID_RECIPE)),
            st.sampled_from(["seed", "batch_size", "source", "stages", "export", "models", "image_format"]),
            json_values,
        ),
    ),
)


@st.composite
def recipe_with_a_bad_value(draw: st.DrawFn) -> bytes:
    return yaml.safe_dump(replace_somewhere(draw, yaml.safe_load(VALID_RECIPE))).encode()


@st.composite
def pairs_lines(draw: st.DrawFn) -> list[str]:
    out = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["mutated", "replaced", "value", "deep"]))
        if kind == "mutated":
            out.append(draw(mutated_text(json.dumps(VALID_LINE))).decode("utf-8", "replace"))
        elif kind == "replaced":
            out.append(dump(replace_somewhere(draw, VALID_LINE)))
        elif kind == "value":
            out.append(dump(draw(json_values)))
        else:
            depth = draw(st.sampled_from([1000, 100_000]))
            out.append("[" * depth + "]" * depth)
    return [line.replace("\n", " ") for line in out]


@st.composite
def captions_files(draw: st.DrawFn) -> tuple[str, bytes]:
    suffix = draw(st.sampled_from([".txt", ".jsonl", ".json"]))
    valid = [{"image_id": 1, "caption": "a cat on a mat"}, {"image_id": 2, "caption": "a dog"}]
    if suffix == ".json":
        base = {"annotations": valid}
        text = dump(replace_somewhere(draw, base)) if draw(st.booleans()) else json.dumps(base)
    elif suffix == ".jsonl":
        text = "\n".join(dump(replace_somewhere(draw, item)) for item in valid)
    else:
        text = "\n".join(item["caption"] for item in valid)
    return suffix, draw(mutated_text(text))


@st.composite
def coco_inputs(draw: st.DrawFn) -> tuple[bytes, bytes]:
    instances, captions = coco_files(Path(tempfile.gettempdir()) / "imgdiff-fuzz-coco-template")
    which = draw(st.sampled_from(["instances", "captions", "rle", "both"]))
    if which in ("instances", "both"):
        instances = replace_somewhere(draw, instances)
    if which in ("captions", "both"):
        captions = replace_somewhere(draw, captions)
    if which == "rle":  # garbage run lengths in the RLE object
        counts = draw(st.one_of(st.text(max_size=30), st.lists(st.integers(-(2**40), 2**40), max_size=6)))
        instances["annotations"][1]["segmentation"]["counts"] = counts
    text = dump(instances).encode()
    if draw(st.booleans()):
        text = draw(mutated_text(dump(instances)))
    return text, dump(captions).encode()


# -- the tests --------------------------------------------------------------------------------------
@FAST
@given(text=st.one_of(recipe_texts, recipe_with_a_bad_value()))
def test_recipes_never_traceback(capsys: pytest.CaptureFixture[str], text: bytes) -> None:
    _recipe_case(capsys, text)


@settings(FAST, max_examples=15)
@given(lines=pairs_lines())
def test_pairs_lines_never_traceback(capsys: pytest.CaptureFixture[str], lines: list[str]) -> None:
    _pairs_case(capsys, lines)


@settings(FAST, max_examples=25)
@given(case=captions_files())
def test_captions_never_traceback(capsys: pytest.CaptureFixture[str], case: tuple[str, bytes]) -> None:
    _captions_case(capsys, *case)


@settings(FAST, max_examples=20)
@given(case=coco_inputs())
def test_coco_files_never_traceback(capsys: pytest.CaptureFixture[str], case: tuple[bytes, bytes]) -> None:
    _coco_case(capsys, *case)


@pytest.mark.slow
@SLOW
@given(
    case=st.one_of(
        st.tuples(st.just("recipe"), st.one_of(recipe_texts, recipe_with_a_bad_value())),
        st.tuples(st.just("pairs"), pairs_lines()),
        st.tuples(st.just("captions"), captions_files()),
        st.tuples(st.just("coco"), coco_inputs()),
    )
)
def test_many_inputs_never_traceback(capsys: pytest.CaptureFixture[str], case: tuple[str, Any]) -> None:
    kind, value = case
    if kind == "recipe":
        _recipe_case(capsys, value)
    elif kind == "pairs":
        _pairs_case(capsys, value)
    else:
        {"captions": _captions_case, "coco": _coco_case}[kind](capsys, *value)


@pytest.mark.parametrize(
    "recipe_text",
    [
        b"stages:\n  - pair_filter: pixel\n",
        "seed: 1 # caf\xe9\n".encode("latin-1"),
    ],
)
def test_the_real_entry_point_prints_one_line(tmp_path: Path, recipe_text: bytes) -> None:
    (tmp_path / "recipe.yaml").write_bytes(b"source: {type: synthetic, count: 2}\n" + recipe_text)
    done = subprocess.run(
        [sys.executable, "-m", "imgdiff", "run", str(tmp_path / "recipe.yaml"), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")},
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    TRIED["subprocess"] += 1


def teardown_module() -> None:
    print(f"\nfuzz inputs tried: {dict(TRIED)}, total {sum(TRIED.values())}, exits {dict(EXITS)}")
