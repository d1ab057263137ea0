from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from imgdiff.errors import UsageError
from imgdiff.models import ModelPool
from imgdiff.record import Record
from imgdiff.stages.pair_filter.pixel import PixelPairFilter
from imgdiff.store import ImageLoader
from scenes import draw_pair
from stage_contract import StageContract


class TestPixelPairFilterContract(StageContract):
    stage_cls = PixelPairFilter


def _scored(a: np.ndarray, b: np.ndarray, **settings: object) -> Record:
    stage = PixelPairFilter(PixelPairFilter.resolve_settings(dict(settings), "test"))
    stage.setup(ModelPool({}), ImageLoader(Path(".")))
    record = Record(id="x", source_index=0, seed=1, artifacts={"a": a, "b": b})
    (record,) = stage([record])
    stage.decide(record)
    return record


def _scene(seed: int = 0) -> np.ndarray:
    """A textured 256 px scene with a few objects and soft shadows, without noise."""
    return draw_pair(seed, size=256, edit="none", noise=0.0)[0]


def _noisy(image: np.ndarray, seed: int, sigma: float = 4.0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sigma, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def _photometric(image: np.ndarray, gain: float = 1.0, offset: tuple[float, ...] = (0, 0, 0)) -> np.ndarray:
    """A global change: contrast `gain` around the image mean, then a per-channel `offset`."""
    pixels = image.astype(np.float32)
    return np.clip((pixels - pixels.mean()) * gain + pixels.mean() + offset, 0, 255).astype(np.uint8)


def test_identical_images_are_rejected_as_a_failed_edit() -> None:
    a = _scene()
    record = _scored(a, a.copy())
    assert record.scores["pair_filter.similarity"] == 1.0
    assert record.scores["pair_filter.changed_area"] == 0.0
    assert record.rejected_by == "pair_filter" and record.reason.startswith("changed_area_min:")


def test_noise_alone_is_a_failed_edit() -> None:
    a = _scene()
    record = _scored(_noisy(a, 1), _noisy(a, 2))
    assert record.reason.startswith("changed_area_min:")


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("edit", ["replace", "remove"])
def test_one_changed_object_is_kept(seed: int, edit: str) -> None:
    a, b, _ = draw_pair(seed, size=256, edit=edit)
    record = _scored(a, b)
    assert record.kept, record.reason
    assert 0.005 < record.scores["pair_filter.changed_area"] < 0.1


def test_an_object_covering_a_fifth_of_the_image_is_kept() -> None:
    a = _scene(1)
    b = a.copy()
    cv2.rectangle(b, (40, 40), (155, 155), (200, 30, 160), -1)
    record = _scored(_noisy(a, 1), _noisy(b, 2))
    assert record.kept, record.reason
    assert 0.18 < record.scores["pair_filter.changed_area"] < 0.3  # blur widens the edges


@pytest.mark.parametrize(
    "change",
    [
        # Brightness and contrast here push part of the pixels over a plain difference threshold
        # (the first pixel filter kept all of these pairs).
        {"offset": (22, 22, 22)},  # brighter
        {"offset": (-22, -22, -22)},  # darker
        {"gain": 0.7},  # less contrast
        {"gain": 1.5},  # more contrast
        {"offset": (25, 0, -25)},  # warm colour cast
        {"offset": (-35, 0, 35)},  # cool colour cast
    ],
)
@pytest.mark.parametrize("seed", range(3))
def test_a_global_change_alone_is_rejected(change: dict, seed: int) -> None:
    a = _scene(seed)
    record = _scored(_noisy(a, 1), _noisy(_photometric(a, **change), 2))
    assert not record.kept, record.scores


def test_an_edit_on_top_of_a_global_change_is_rejected() -> None:
    a, b, _ = draw_pair(0, size=256)
    record = _scored(a, _photometric(b, offset=(15, 15, 15)))
    assert record.reason.startswith("median_diff_max:")


def test_a_replaced_scene_is_rejected() -> None:
    record = _scored(_scene(0), _scene(1))
    assert not record.kept and record.reason.startswith(("similarity_min:", "structure_min:"))


def test_scores_do_not_depend_on_the_batch() -> None:
    pairs = [draw_pair(seed, size=128) for seed in range(3)]
    stage = PixelPairFilter(PixelPairFilter.resolve_settings({}, "test"))
    stage.setup(ModelPool({}), ImageLoader(Path(".")))

    def records() -> list[Record]:
        return [
            Record(id=f"r{i}", source_index=i, seed=1, artifacts={"a": a, "b": b})
            for i, (a, b, _) in enumerate(pairs)
        ]

    together = stage(records())
    alone = [stage([record])[0] for record in records()]
    assert [r.scores for r in together] == [r.scores for r in alone]


def test_thresholds_are_settings_named_after_scores() -> None:
    a, b, _ = draw_pair(0, size=256)
    assert _scored(a, b, similarity_min=0.99).reason.startswith("similarity_min:")
    assert _scored(a, b, changed_area_min=0.0, changed_area_max=0.001).reason.startswith("changed_area_max:")
    assert _scored(a, a, changed_area_min=None).kept


def test_unknown_preset_names_the_valid_ones() -> None:
    with pytest.raises(UsageError, match="unknown preset 'papr'.*did you mean 'paper'"):
        PixelPairFilter.resolve_settings({"preset": "papr"}, "test")
