"""The FastSAM segmenter on a tiny random-weight checkpoint, loaded the way a run loads it."""

from __future__ import annotations

import os
from importlib.util import find_spec

import numpy as np
import pytest

from imgdiff.errors import UsageError
from imgdiff.models import ModelEntry, ModelPool
from imgdiff.models.fastsam import PAPER_SETTINGS, FastSamSegmenter
from imgdiff.models.loading import ModelNotFound
from imgdiff.models.roles import Segments
from scenes import draw_pair

# Not importorskip: importing ultralytics at collection would patch PIL.Image.open for every test.
pytestmark = pytest.mark.skipif(find_spec("ultralytics") is None, reason="ultralytics is not installed")


@pytest.fixture(scope="module")
def segmenter(tiny_models) -> FastSamSegmenter:
    return ModelPool({"fastsam": ModelEntry(**tiny_models("fastsam"), device="cpu")}).get("fastsam")


def scenes() -> list[np.ndarray]:
    """Textured scenes of several sizes (two of one size, to batch together)."""
    a, b, _ = draw_pair(0, size=128)
    wide = np.ascontiguousarray(np.concatenate([draw_pair(1, size=96)[0]] * 2, axis=1)[:80])  # 80 x 192
    return [a, b, wide, draw_pair(2, size=160)[0]]


def same(x: Segments, y: Segments) -> bool:
    return x.boxes.shape == y.boxes.shape and np.allclose(x.boxes, y.boxes, atol=1e-3)


def test_boxes_masks_scores_per_image(segmenter):
    images = scenes()
    out = segmenter.segment(images)
    assert len(out) == len(images)
    assert sum(len(s.boxes) for s in out) > 0
    for image, s in zip(images, out, strict=True):
        h, w = image.shape[:2]
        k = len(s.boxes)
        assert s.boxes.dtype == np.float32 and s.boxes.shape == (k, 4)
        assert s.masks.dtype == bool and s.masks.shape == (k, h, w)  # retina masks: the input's size
        assert s.scores.dtype == np.float32 and s.scores.shape == (k,)
        x1, y1, x2, y2 = s.boxes.T
        assert ((x1 >= 0) & (y1 >= 0) & (x1 <= x2) & (y1 <= y2) & (x2 <= w) & (y2 <= h)).all()
        assert ((s.scores >= PAPER_SETTINGS["conf"]) & (s.scores <= 1)).all()
        for box, mask in zip(s.boxes, s.masks, strict=True):  # a mask lies in its box
            ys, xs = np.nonzero(mask)
            if len(xs):
                assert xs.min() >= box[0] - 1 and xs.max() <= box[2] and ys.min() >= box[1] - 1
                assert ys.max() <= box[3]


def test_different_images_give_different_boxes(segmenter):
    boxes = [s.boxes for s in segmenter.segment(scenes()[:2])]
    assert boxes[0].shape != boxes[1].shape or not np.allclose(boxes[0], boxes[1], atol=1.0)


def test_colour_order_is_rgb(segmenter, tiny_models):
    """Same as ultralytics itself given the BGR array; different when red and blue are swapped."""
    from ultralytics import FastSAM

    image = scenes()[0]
    ours = segmenter.segment([image])[0]
    direct = FastSAM(tiny_models("fastsam")["path"]).predict(
        np.ascontiguousarray(image[..., ::-1]), **segmenter.settings, retina_masks=True, verbose=False
    )[0]
    np.testing.assert_allclose(ours.boxes, direct.boxes.xyxy.numpy(), atol=1e-4)
    np.testing.assert_array_equal(ours.masks, direct.masks.data.numpy() > 0.5)
    swapped = segmenter.segment([np.ascontiguousarray(image[..., ::-1])])[0]
    assert not same(ours, swapped)


def test_batched_equals_one_at_a_time(segmenter, monkeypatch):
    images = scenes()
    whole = segmenter.segment(images)
    monkeypatch.setattr(segmenter, "batch_size", 1)
    single = segmenter.segment(images)
    for x, y in zip(whole, single, strict=True):
        assert same(x, y)
        np.testing.assert_allclose(x.scores, y.scores, atol=1e-4)
        assert (x.masks != y.masks).mean() < 1e-3 if x.masks.size else True


def test_empty_input_and_no_detections(segmenter):
    assert segmenter.segment([]) == []
    # square, so no letterbox padding either: nothing to find
    (flat,) = segmenter.segment([np.zeros((64, 64, 3), np.uint8)])
    assert flat.boxes.shape == (0, 4) and flat.boxes.dtype == np.float32
    assert flat.masks.shape == (0, 64, 64) and flat.masks.dtype == bool
    assert flat.scores.shape == (0,) and flat.scores.dtype == np.float32


def test_an_image_without_pixels_is_named(segmenter):
    with pytest.raises(ValueError, match=r"image 0: expected an RGB array"):
        segmenter.segment([np.zeros((0, 10, 3), np.uint8)])


def test_settings_come_from_the_entry_else_the_paper(tiny_models):
    entry = {**tiny_models("fastsam"), "device": "cpu"}
    assert ModelPool({"f": ModelEntry(**entry)}).get("f").settings["imgsz"] == 128
    entry.pop("imgsz")
    settings = ModelPool({"f": ModelEntry(**entry, conf=0.2)}).get("f").settings
    assert settings == {**PAPER_SETTINGS, "conf": 0.2, "device": "cpu"}


def test_missing_or_wrong_path_fails_with_one_line_naming_the_model(tmp_path):
    def load(path):
        ModelPool({"my-sam": ModelEntry(role="segmenter", backend="ultralytics", path=str(path))}).get(
            "my-sam"
        )

    with pytest.raises(ModelNotFound) as missing:
        load(tmp_path / "FastSAM-x.pt")
    (tmp_path / "fastsam.yaml").write_text("nc: 1\n")
    with pytest.raises(UsageError) as not_weights:
        load(tmp_path / "fastsam.yaml")
    for error in (missing, not_weights):
        message = str(error.value)
        assert "my-sam" in message and "\n" not in message


def test_loading_leaves_pil_image_open_alone(segmenter, tmp_path):
    """ultralytics' import patches PIL.Image.open (its wrapper imports pi_heif on an unreadable
    file): the segmenter puts PIL's own back, so a corrupt image elsewhere still raises PIL's error."""
    from PIL import Image, UnidentifiedImageError

    bad = tmp_path / "corrupt.png"
    bad.write_bytes(b"not an image")
    assert Image.open.__module__ == "PIL.Image"
    with pytest.raises(UnidentifiedImageError):
        Image.open(bad)


def test_proposals_give_the_same_boxes_and_masks_only_inside_asked_boxes(segmenter):
    """`propose`: segment's boxes and scores (it also keeps proposals whose mask is empty), and on
    request the masks of chosen proposals cut to a box, agreeing with the retina masks there."""
    images = scenes()
    for proposals, segments in zip(segmenter.propose(images), segmenter.segment(images), strict=True):
        found = [np.abs(proposals.boxes - box).max(axis=1).min() < 1e-3 for box in segments.boxes]
        assert all(found) and len(proposals.boxes) >= len(segments.boxes)
        assert proposals.boxes.dtype == np.float32 and proposals.scores.shape == (len(proposals.boxes),)
        picks = [int(np.abs(proposals.boxes - box).max(axis=1).argmin()) for box in segments.boxes]
        boxes = [
            [int(np.floor(x1)), int(np.floor(y1)), int(np.ceil(x2)), int(np.ceil(y2))]
            for x1, y1, x2, y2 in segments.boxes
        ]
        boxes = [[x1, y1, max(x2, x1 + 1), max(y2, y1 + 1)] for x1, y1, x2, y2 in boxes]
        for (x1, y1, x2, y2), mask, retina in zip(
            boxes, proposals.masks(picks, boxes), segments.masks, strict=True
        ):
            assert mask.dtype == bool and mask.shape == (y2 - y1, x2 - x1)
            assert (mask != retina[y1:y2, x1:x2]).mean() < 0.1
    assert segmenter.propose([]) == []


def test_torch_keeps_its_thread_count(segmenter):
    """ultralytics sets torch's threads to cores - 1 when it sets up a predictor, process-wide:
    the backend keeps the caller's count, for the first call's inference too (a run resumed
    mid-way must compute its first batch as the uninterrupted run did) and for the other models."""
    import torch

    before = torch.get_num_threads()
    fresh = type(segmenter)(type(segmenter.model)(segmenter.model.ckpt_path), segmenter.settings)
    seen: list[int] = []
    fresh.model.add_callback("on_predict_batch_start", lambda _: seen.append(torch.get_num_threads()))
    torch.set_num_threads(before + 1)
    try:
        fresh.propose(scenes()[:1])
        fresh.segment(scenes()[:1])  # another predictor class: set up again
        assert seen == [before + 1, before + 1] and torch.get_num_threads() == before + 1
    finally:
        torch.set_num_threads(before)


def test_importing_ultralytics_leaves_the_thread_environment_alone():
    """ultralytics' import sets OMP_NUM_THREADS=1 for every process started after it: a resumed run
    in a new process then computes with another thread count than the run it resumes."""
    import subprocess
    import sys

    code = (
        "import os; from imgdiff.models.fastsam import import_ultralytics; import_ultralytics(); "
        "import ultralytics; print(os.environ.get('OMP_NUM_THREADS'), os.environ.get('NUMEXPR_MAX_THREADS'))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "NUMEXPR_MAX_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["None", "None"]
    out = subprocess.run(
        [sys.executable, "-c", code], env={**env, "OMP_NUM_THREADS": "3"}, capture_output=True, text=True
    )
    assert out.stdout.split() == ["3", "None"]


@pytest.mark.parametrize("side", [128, 64])  # at the model's input size (1 pixel = 1/4 cell), and half
def test_box_masks_by_enlargement_equal_the_general_warp(segmenter, side, monkeypatch):
    """Where a prototype cell is a whole number of pixels, masks come from a plain enlargement of the
    cells instead of an affine warp: the very same pixels."""
    from imgdiff.models import fastsam

    model = FastSamSegmenter(segmenter.model, {**segmenter.settings, "imgsz": 128})
    image = np.ascontiguousarray(draw_pair(3, size=128)[0][:side, : side * 3 // 4])
    (proposals,) = model.propose([image])
    assert fastsam._whole_factor(*proposals._letterbox[:4]) == 4 * side // 128
    boxes = [
        [int(x1), int(y1), max(int(np.ceil(x2)), int(x1) + 1), max(int(np.ceil(y2)), int(y1) + 1)]
        for x1, y1, x2, y2 in proposals.boxes
    ]
    indices = list(range(len(boxes)))
    enlarged = proposals.masks(indices, boxes)
    monkeypatch.setattr(fastsam, "_whole_factor", lambda *letterbox: 0)
    warped = proposals.masks(indices, boxes)
    assert len(boxes) > 0
    for a, b in zip(enlarged, warped, strict=True):
        np.testing.assert_array_equal(a, b)
