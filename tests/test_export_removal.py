"""Object removal's question: "Which image has <object> in the red box? A. left B. right", the answer
at the image that HAS the object (the reference pointed at the other one), sides balanced by seed."""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import numpy as np

import imgdiff
from imgdiff.export.samples import ChoiceSample, removal_sample, samples_of_records
from imgdiff.record import Edit, Record, TruthBox, derive_seed
from imgdiff.render import BAR
from imgdiff.tiny import tiny_recipe

BOX = [8.0, 8.0, 24.0, 24.0]


def removal_child(seed: int, kept: bool = True) -> Record:
    record = Record(
        id=f"c{seed:04d}",
        source_index=seed,
        seed=derive_seed(0, f"c{seed:04d}"),
        kind="removal",
        edit=Edit(old="a red cup", new=""),
        truth=[TruthBox(BOX, role="removed")],
        scores={"remove.present_before": 0.6, "remove.present_after": 0.1},
    )
    if not kept:
        record.reject("remove", "present_after_max: present_after 0.5 > 0.2")
    return record


def with_and_without() -> tuple[np.ndarray, np.ndarray]:
    """Image a holds a red cup (a red square); image b is the same scene without it."""
    b = np.full((32, 32, 3), 120, np.uint8)
    a = b.copy()
    a[12:20, 12:20] = (230, 20, 20)
    return a, b


def test_the_answer_letter_points_at_the_image_that_has_the_object() -> None:
    a, b = with_and_without()
    for seed in range(40):  # both sides occur
        sample = removal_sample(removal_child(seed))
        assert sample is not None
        picture = sample.picture(a, b)
        halves = {"A": picture[:, :32], "B": picture[:, 32 + BAR :]}
        chosen = halves[sample.answer]
        other = halves["B" if sample.answer == "A" else "A"]
        # the red square is inside the box's frame, so compare the inside of the box only
        assert (chosen[12:20, 12:20] == (230, 20, 20)).all(), f"seed {seed}: the answer shows no object"
        assert (other[12:20, 12:20] == 120).all()
        assert sample.question.endswith(
            "Which image has a red cup in the red box?\nA. left\nB. right\nAnswer with the option's letter."
        )
        assert sample.choices == ("left", "right")


def test_answers_are_balanced_over_a_thousand_samples() -> None:
    answers = [removal_sample(removal_child(seed)).answer for seed in range(1000)]  # type: ignore[union-attr]
    share = answers.count("A") / len(answers)
    assert 0.45 <= share <= 0.55, share


def test_only_kept_removal_children_make_the_question() -> None:
    rejected = removal_child(1, kept=False)
    copy_paste = removal_child(2)
    copy_paste.scores = {}  # a copy-paste removal pair: the difference samples, not the question
    samples = samples_of_records([rejected, copy_paste, removal_child(3)])
    assert [s.id for s in samples] == ["c0003_removal"]
    assert isinstance(samples[0], ChoiceSample) and samples[0].fields()["region.box"] == BOX


def test_the_tiny_removal_recipe_end_to_end(tmp_path: Path, tiny_models: Any) -> None:
    names = ("clip", "blip", "fastsam", "llm", "sdxl", "sdxl_inpaint")
    captions = tmp_path / "captions.txt"
    captions.write_text("a cat sitting on a wooden bench\na red car parked next to a tree\n")
    recipe = tiny_recipe({name: tiny_models(name) for name in names}, captions, "img-diff-removal")
    recipe["batch_size"] = 2
    result = imgdiff.run(recipe, tmp_path / "run")
    assert [s["stage"] for s in result.stats["stages"]][-1] == "remove"
    records = imgdiff.load_records(tmp_path / "run")
    children = [r for r in records if r.kind == "removal"]
    assert children and all(r.id.count("-") == 2 and r.truth and r.edit for r in children)
    assert all((tmp_path / "run" / r.aux["masks"]).is_file() for r in children)
    data = json.loads((tmp_path / "run" / "export" / "llava" / "data.json").read_text())
    kept = [r for r in children if r.kept]
    assert len(data) == len(kept) and {d["conversations"][1]["value"] for d in data} <= set(
        string.ascii_uppercase[:2]
    )
    assert all("in the red box?\nA. left\nB. right" in d["conversations"][0]["value"] for d in data)
