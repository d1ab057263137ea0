from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

import imgdiff
from imgdiff.errors import UsageError
from imgdiff.record import Record, derive_seed
from imgdiff.sources.synthetic import SyntheticSettings, SyntheticSource, draw, scene
from imgdiff.sources.synthetic.pair import Pair, make_pair

SMALL = SyntheticSettings(size=128)  # the shares do not depend on the size; 128 px is 20x faster


@pytest.fixture(scope="module")
def pairs() -> list[Pair]:
    """400 pairs from seeds made the way the engine makes them."""
    return [make_pair(np.random.default_rng(derive_seed(0, f"{i:012x}")), SMALL) for i in range(400)]


def _edits(pairs: list[Pair], kind: str | None = None) -> list[Pair]:
    return [p for p in pairs if p.kind != "distractor" and (kind is None or p.kind == kind)]


def _record(seed: int) -> Record:
    return Record(id=f"{seed:012x}", source_index=seed, seed=seed)


def _source(**settings: object) -> SyntheticSource:
    return SyntheticSource(SyntheticSettings(**settings))


# -- determinism ------------------------------------------------------------------------------------
def test_same_seed_same_pixels_whatever_the_batch() -> None:
    source = _source(size=256)
    alone = source.load([(_record(7), 0)])[0]
    batched = source.load([(_record(3), 0), (_record(7), 1), (_record(11), 2)])[1]
    assert alone.to_dict() == batched.to_dict()
    for name in ("a", "b"):
        assert np.array_equal(alone.artifacts[name], batched.artifacts[name])
    if "masks" in alone.artifacts:
        for key in ("truth_a", "truth_b"):
            assert np.array_equal(alone.artifacts["masks"][key], batched.artifacts["masks"][key])
    other = source.load([(_record(8), 0)])[0]
    assert not np.array_equal(alone.artifacts["a"], other.artifacts["a"])


def test_fingerprint_covers_every_setting_but_count() -> None:
    assert _source().fingerprint() == _source().fingerprint() == _source(count=5).fingerprint()
    assert len({_source(**kw).fingerprint() for kw in ({}, {"size": 256}, {"min_area": 0.02})}) == 3


# -- shares and difficulty --------------------------------------------------------------------------
def test_shares_over_400_items(pairs: list[Pair]) -> None:
    distractors = sum(p.kind == "distractor" for p in pairs) / len(pairs)
    edits = _edits(pairs)
    occluded = sum(p.occluded for p in edits) / len(edits)
    replacements = _edits(pairs, "replacement")
    same = sum(p.sprites_a[p.target].obj.colour == p.sprites_b[p.target].obj.colour for p in replacements)
    assert abs(distractors - 0.15) <= 0.04
    assert occluded >= 0.2
    assert same / len(replacements) >= 0.2
    assert len(_edits(pairs, "removal")) >= 0.2 * len(edits)


def test_every_changed_object_covers_the_minimum_area(pairs: list[Pair]) -> None:
    least = SMALL.min_area * SMALL.size**2
    for p in _edits(pairs):
        assert p.truth_a.sum() >= least
        assert p.truth_b.sum() >= least if p.kind == "replacement" else not p.truth_b.any()


def test_truth_box_is_the_box_of_the_masks_union(pairs: list[Pair]) -> None:
    for p in _edits(pairs):
        x, y, w, h = cv2.boundingRect((p.truth_a | p.truth_b).astype(np.uint8))
        assert p.box == [x, y, x + w, y + h]
        # visible: the object's own pixels (coverage >= 0.5, no shadow) less those objects in front cover
        front = np.zeros_like(p.truth_a)
        for sprite in p.sprites_a[p.target + 1 :]:
            front |= sprite.full_mask(SMALL.size)
        assert np.array_equal(p.truth_a, p.sprites_a[p.target].full_mask(SMALL.size) & ~front)
    for p in pairs:
        assert (p.kind == "distractor") == (p.box is None) == (p.edit is None)


def test_shadows_and_noise_stay_within_the_spec(pairs: list[Pair]) -> None:
    for p in pairs[:100]:
        assert 2.0 <= p.plan.sigma <= 6.0
        for sprite in p.sprites_a:
            dx, dy, _, opacity = sprite.obj.shadow
            assert np.hypot(dx, dy) <= 0.06 * 2 * sprite.obj.r + 1e-6 and 0.3 <= opacity <= 0.5
        assert scene.all_shown(p.sprites_a) and scene.all_shown(p.sprites_b)


# -- pixels -----------------------------------------------------------------------------------------
def test_a_replacement_changes_nothing_but_noise_outside_the_truth() -> None:
    settings = SyntheticSettings(removal_share=0.0, distractor_share=0.0)
    for seed in range(6):
        p = make_pair(np.random.default_rng(seed), settings)
        old, new = p.sprites_a[p.target], p.sprites_b[p.target]
        margin = max(draw.shadow_margin(old.obj), draw.shadow_margin(new.obj)) + 2  # + anti-aliasing
        # the truth masks, and the parts of both objects hidden behind objects in front (their
        # shadows may peek out), dilated by the shadow margin
        changed = p.truth_a | p.truth_b | old.full_mask(512) | new.full_mask(512)
        near = cv2.dilate(changed.astype(np.uint8), np.ones((2 * margin + 1,) * 2, np.uint8)) > 0
        assert np.array_equal(p.clean_a[~near], p.clean_b[~near])
        diff = p.a[~near].astype(np.float32) - p.b[~near]
        assert abs(diff.mean()) < 0.3 and diff.std() < np.sqrt(2) * p.plan.sigma * 1.05 + 0.5
        assert diff.std() > np.sqrt(2) * p.plan.sigma * 0.8  # noised independently


def test_a_removal_reveals_the_background() -> None:
    settings = SyntheticSettings(removal_share=1.0, distractor_share=0.0)
    for seed in range(6):
        p = make_pair(np.random.default_rng(seed), settings)
        others = np.zeros((512, 512), bool)
        for sprite in p.sprites_b:
            cover = np.zeros((512, 512), np.float32)
            draw._paste(cover, sprite.alpha, sprite.x0, sprite.y0, np.maximum)
            others |= cover > 0
        bare = p.truth_a & ~others  # where the object was and no object of b lies
        assert bare.any()
        ratio = p.clean_b[bare] / p.background[bare]  # the background, under other objects' shadows
        assert ratio.min() >= 0.2 and ratio.max() <= 1.0 + 1e-5
        assert np.allclose(ratio[:, 0], ratio[:, 1], atol=1e-4) and np.allclose(
            ratio[:, 0], ratio[:, 2], atol=1e-4
        )
        assert np.abs(p.clean_a[bare] - p.clean_b[bare]).max() > 30


def test_a_distractor_changes_the_whole_image_and_no_object() -> None:
    settings = SyntheticSettings(distractor_share=1.0, size=128)
    for seed in range(10):
        p = make_pair(np.random.default_rng(seed), settings)
        assert p.photometric and p.sprites_a is p.sprites_b and p.caption_a == p.caption_b
        assert np.abs(p.clean_a - p.clean_b).mean() > 2.0


# -- captions and vocabulary ------------------------------------------------------------------------
def _phrases(caption: str, setting: str) -> list[str]:
    listed = caption.removesuffix(" " + setting)
    head, _, last = listed.rpartition(" and ")
    return [*head.split(", "), last] if head else [last]


def test_captions_name_the_objects_and_differ_exactly_by_the_edit(pairs: list[Pair]) -> None:
    for p in pairs:
        phrases_a, phrases_b = _phrases(p.caption_a, p.setting), _phrases(p.caption_b, p.setting)
        assert sorted(phrases_a) == sorted(s.obj.phrase for s in p.sprites_a)
        if p.kind == "distractor":
            assert phrases_a == phrases_b
            continue
        old, new = p.edit
        (gone,) = [x for x in phrases_a if x not in phrases_b]
        assert gone.endswith(" " + old)
        if p.kind == "removal":
            assert new == "" and phrases_b == [x for x in phrases_a if x != gone]
        else:
            (came,) = [x for x in phrases_b if x not in phrases_a]
            assert came.endswith(" " + new) and old != new
            assert phrases_b == [came if x == gone else x for x in phrases_a]
            assert _size(came, new) == _size(gone, old)


def _size(phrase: str, name: str) -> list[str]:
    return phrase.removesuffix(" " + name).split()[1:]  # [] for medium, else ["small"] or ["large"]


def test_vocabulary_14_classes_8_colours_3_sizes_all_reachable(pairs: list[Pair]) -> None:
    assert len(scene.CLASSES) >= 12 and len(scene.COLOURS) == 8 and len(scene.SIZES) == 3
    rng = np.random.default_rng(0)
    drawn = {(o.shape, o.colour, o.size) for o in (scene.new_object(rng, 512, 0.0) for _ in range(6000))}
    assert len(drawn) == len(scene.CLASSES) * len(scene.COLOURS) * len(scene.SIZES)
    changed = [p.sprites_a[p.target].obj for p in _edits(pairs)]
    changed += [p.sprites_b[p.target].obj for p in _edits(pairs, "replacement")]
    assert {o.shape for o in changed} == set(scene.CLASSES)
    assert {o.colour for o in changed} == set(scene.COLOURS)
    assert {o.size for o in changed} == set(scene.SIZES)
    counts = [len(p.sprites_a) for p in pairs]
    assert min(counts) == 3 and max(counts) == 8


# -- the source in a real run -----------------------------------------------------------------------
def test_a_run_writes_images_masks_and_truth(tmp_path: Path) -> None:
    recipe = {"seed": 1, "batch_size": 4, "source": {"type": "synthetic", "count": 10, "size": 128}}
    imgdiff.run(recipe, tmp_path / "run")
    lines = [json.loads(x) for x in (tmp_path / "run" / "records.jsonl").read_text().splitlines()]
    records = imgdiff.load_records(tmp_path / "run")
    assert len(records) == 10 and all(r.kept for r in records)
    assert {r.kind for r in records} <= {"replacement", "removal", "distractor"}
    for record, line in zip(records, lines, strict=True):
        assert all((tmp_path / "run" / record.images[n]).is_file() for n in ("a", "b"))
        if record.kind == "distractor":
            assert record.truth == [] and "masks" not in record.aux and record.edit is None
            continue
        assert line["truth"][0]["role"] == "changed" and record.edit.old
        with np.load(tmp_path / "run" / record.aux["masks"]) as masks:
            a, b = masks["truth_a"], masks["truth_b"]
        assert a.dtype == bool and a.shape == b.shape == (128, 128)
        x, y, w, h = cv2.boundingRect((a | b).astype(np.uint8))
        assert record.truth[0].box == [x, y, x + w, y + h]


@pytest.mark.parametrize(
    "settings",
    [
        {"count": -1},
        {"size": 32},
        {"distractor_share": 1.5},
        {"same_colour_share": -0.1},
        {"objects_max": 2},
        {"noise_max": 1.0},
        {"min_area": 0.5},
    ],
)
def test_bad_settings_raise_one_line(tmp_path: Path, settings: dict) -> None:
    recipe = {"source": {"type": "synthetic", **settings}}
    with pytest.raises(UsageError) as info:
        imgdiff.run(recipe, tmp_path / "run", dry_run=True)
    assert "\n" not in str(info.value) and f"source.{next(iter(settings))}" in str(info.value)


def test_unknown_setting_is_named(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="distractor_shar"):
        imgdiff.run({"source": {"type": "synthetic", "distractor_shar": 0.1}}, tmp_path / "run", dry_run=True)


def test_a_larger_count_extends_the_run(tmp_path) -> None:
    import imgdiff

    recipe = {"source": {"type": "synthetic", "count": 3, "size": 128}, "stages": []}
    imgdiff.run(recipe, tmp_path / "run")
    recipe["source"]["count"] = 5
    result = imgdiff.run(recipe, tmp_path / "run")
    assert result.stats["stages"][0]["reused"] == 3 and result.stats["stages"][0]["computed"] == 2
