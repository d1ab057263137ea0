"""`remove`/`inpaint`: changed objects painted out into removal children, verified from stored scores.
Deterministic colour models (semantic_fakes.py) with the real OpenCV inpainter check the logic; the
tiny random checkpoints check the diffusers inpainter and the contract's run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from imgdiff.models import ModelEntry, ModelPool
from imgdiff.models.inpaint import OpenCVInpainter
from imgdiff.models.roles import Inpainting
from imgdiff.record import Record
from imgdiff.stages.regions.semantic import SemanticRegions
from imgdiff.stages.remove.inpaint import REMOVED, InpaintRemove
from imgdiff.store import ImageLoader
from semantic_fakes import CHANGED, STILL, BoxSegmenter, ColourEmbedder, ColourMatcher, FakePool, drawn_record
from stage_contract import StageContract

OPEN = {"changed_below": None, "present_before_min": None, "present_after_max": None}  # random weights


class TestInpaintRemoveContract(StageContract):
    stage_cls = InpaintRemove
    settings = {"inpainter": "cv", "matcher": "blip", "size": 64, **OPEN}
    upstream = [
        {"pair_filter": {"method": "pixel"}},
        {
            "regions": {
                "method": "semantic",
                "embedder": "clip",
                "matcher": "blip",
                "segmenter": "fastsam",
                "candidates": ["segmenter"],
                "crop_similarity_lt": None,
                "match_rule": "none",
            }
        },
    ]

    @pytest.fixture(autouse=True)
    def _tiny_models(self, tiny_models: Any) -> None:
        self.models = {name: tiny_models(name) for name in ("clip", "blip", "fastsam")}
        self.models["cv"] = {"role": "inpainter", "backend": "opencv"}


# -- helpers ----------------------------------------------------------------------------------------
def removal_stage(pool: FakePool, **settings: Any) -> InpaintRemove:
    given = {"inpainter": "cv", "matcher": "blip", **settings}
    stage = InpaintRemove(InpaintRemove.resolve_settings(given, "test"))
    stage.setup(pool, ImageLoader(Path(".")))  # type: ignore[arg-type]
    return stage


def regions_of(seed: int) -> tuple[Record, FakePool]:
    """A drawn pair (red square in a -> blue disc in b, a green square in both) after `regions`."""
    pool = FakePool(
        clip=ColourEmbedder(),
        blip=ColourMatcher(),
        sam=BoxSegmenter([CHANGED, STILL]),
        cv=OpenCVInpainter("cv"),
    )
    given = {"embedder": "clip", "matcher": "blip", "segmenter": "sam", "match_rule": "none"}
    regions = SemanticRegions(SemanticRegions.resolve_settings(given, "test"))
    regions.setup(pool, ImageLoader(Path(".")))  # type: ignore[arg-type]
    (record,) = regions([drawn_record(seed)])
    regions.decide(record)
    return record, pool


def removed(seed: int, **settings: Any) -> list[Record]:
    record, pool = regions_of(seed)
    stage = removal_stage(pool, **settings)
    out = stage([record])
    for child in out:
        stage.decide(child)
    return out


# -- behaviour --------------------------------------------------------------------------------------
def test_each_changed_object_of_each_image_becomes_a_verified_child() -> None:
    children = removed(3)
    # the green square is the same in both crops (CLIP 1.0 >= 0.9): only the changed box, once per image
    assert [c.id for c in children] == ["pair03-0", "pair03-1"]
    assert [c.edit.old for c in children if c.edit] == ["red square", "blue disc"]  # a's, then b's
    parent_a, parent_b = drawn_record(3).artifacts["a"], drawn_record(3).artifacts["b"]
    for child, original in zip(children, (parent_a, parent_b), strict=True):
        assert child.kept and child.kind == "removal" and child.edit and child.edit.new == ""
        assert [t.box for t in child.truth] == [[float(v) for v in CHANGED]]
        assert np.array_equal(child.artifacts["a"], original)
        hole = child.artifacts["masks"][REMOVED]
        changed = np.any(child.artifacts["b"] != original, axis=2)
        assert changed.any() and not (changed & ~hole).any()  # the removal stays inside its hole
        assert child.scores["remove.present_before"] >= 0.35 and child.scores["remove.present_after"] <= 0.2
        assert child.generation["removed_from"] == "ab"[children.index(child)]
    assert children[1].caption_a == "a blue disc and a green square"


def test_the_paper_thresholds_reject_with_reasons_and_rethreshold_from_stored_scores() -> None:
    (first, _) = removed(4, present_after_max=-1.0)  # nothing is ever "gone" below -1
    assert not first.kept and first.rejected_by == "remove"
    assert str(first.reason).startswith("present_after_max: present_after")
    given = {"inpainter": "cv", "matcher": "blip", "present_after_max": 0.2}
    stage = InpaintRemove(InpaintRemove.resolve_settings(given, "test"))  # deciding needs no models
    first.status, first.rejected_by, first.reason = "kept", None, None  # what rethreshold starts from
    stage.decide(first)
    assert first.kept


def test_a_pair_without_an_object_phrase_or_mask_comes_back_rejected() -> None:
    record, pool = regions_of(5)
    record.edit, record.caption_a, record.caption_b = None, "", ""
    (out,) = removal_stage(pool)([record])
    assert out is record and not out.kept and str(out.reason).startswith("no_objects")
    record, pool = regions_of(6)
    record.artifacts.pop("masks")
    (out,) = removal_stage(pool)([record])
    assert not out.kept and "segmenter mask" in str(out.reason)


def test_per_image_cap_and_nms() -> None:
    children = removed(7, changed_below=None, nms_iou=None, per_image=1)
    assert len(children) == 2  # one object of each image, the most different first
    assert all(c.truth[0].box == [float(v) for v in CHANGED] for c in children)


def test_diffusers_inpainter_changes_only_the_hole_and_is_seeded(tiny_models: Any) -> None:
    entry = ModelEntry(**tiny_models("sdxl_inpaint"))
    inpainter = ModelPool({"inpaint": entry}).get("inpaint")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (48, 40, 3), dtype=np.uint8)
    hole = np.zeros((48, 40), bool)
    hole[10:30, 8:24] = True
    how = Inpainting(size=32, steps=2, seeds=[11, 11])
    one, two = inpainter.inpaint([image, image], [hole, hole], how)
    assert one.shape == image.shape and np.array_equal(one[~hole], image[~hole])
    assert np.array_equal(one, two)  # same seed, same pixels
    (other,) = inpainter.inpaint([image], [hole], Inpainting(size=32, steps=2, seeds=[12]))
    assert not np.array_equal(one[hole], other[hole])


def test_opencv_inpainter_fills_from_the_border() -> None:
    image = np.full((40, 40, 3), 90, np.uint8)
    image[15:25, 15:25] = (250, 0, 0)
    hole = np.zeros((40, 40), bool)
    hole[13:27, 13:27] = True
    (out,) = OpenCVInpainter("cv").inpaint([image], [hole], Inpainting())
    assert np.abs(out.astype(int) - 90).max() <= 2  # the red square is gone, the grey fills it


def test_an_opencv_entry_names_no_weights() -> None:
    from imgdiff.errors import UsageError
    from imgdiff.settings import validate

    assert ModelEntry(role="inpainter", backend="opencv").where() == "OpenCV (no weights)"
    with pytest.raises(UsageError, match="no weights"):
        validate(ModelEntry, {"role": "inpainter", "backend": "opencv", "id": "x/y"}, "models.cv")


def test_killed_and_rerun_gives_identical_records(tmp_path: Path, tiny_models: Any) -> None:
    import signal
    import subprocess
    import sys
    import time

    import yaml

    import imgdiff
    from conftest import tree_bytes
    from pairs_data import write_pairs

    contract = TestInpaintRemoveContract()
    contract.models = {name: tiny_models(name) for name in ("clip", "blip", "fastsam")}
    contract.models["cv"] = {"role": "inpainter", "backend": "opencv"}
    recipe = {**contract.recipe(write_pairs(tmp_path / "pairs", 6)), "batch_size": 2}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    imgdiff.run(recipe, tmp_path / "whole")
    command = [sys.executable, "-m", "imgdiff", "run", str(tmp_path / "recipe.yaml")]
    # the killed run computes in a process of its own: at this process's thread count, as float
    # results may change with it (and earlier tests may leave OMP_NUM_THREADS set, e.g. Ray's)
    import os

    import torch

    threads = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    proc = subprocess.Popen([*command, "--out", str(tmp_path / "killed"), "--no-progress"], env=threads)
    parts = tmp_path / "killed" / "stages" / "remove"
    while proc.poll() is None and sum(1 for p in parts.glob("part-*") for _ in p.open()) < 1:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "records.jsonl").exists(), "the kill came too late"
    imgdiff.run(recipe, tmp_path / "killed")
    outputs = ("records.jsonl", "images", "aux")
    assert tree_bytes(tmp_path / "killed", *outputs) == tree_bytes(tmp_path / "whole", *outputs)
    assert any(r.kind == "removal" for r in imgdiff.load_records(tmp_path / "whole"))


def test_a_damaged_masks_file_rejects_that_pair_only(tmp_path: Path) -> None:
    record, pool = regions_of(8)
    bad = tmp_path / "masks.npz"
    bad.write_bytes(b"not a zip")
    record.artifacts.pop("masks")
    record.aux["masks"] = "masks.npz"
    stage = removal_stage(pool)
    stage.images = ImageLoader(tmp_path)
    (out,) = stage([record])
    assert not out.kept and str(out.reason).startswith("missing_file: masks")
