"""Source `copy_paste`: COCO reading and masks, caption edits, the pixels it changes, its truth,
determinism, bad items, and a real run over a few coco-mini photos."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import imgdiff
from conftest import SHARED_DATA
from imgdiff.errors import UsageError
from imgdiff.language.coco_words import NOUNS, label_caption
from imgdiff.language.removal import remove_category
from imgdiff.language.swaps import rename_category
from imgdiff.record import Record, derive_seed
from imgdiff.sources import SOURCES, coco
from imgdiff.sources.copy_paste import CopyPasteSettings, CopyPasteSource

COCO_MINI = SHARED_DATA / "coco-mini"


@pytest.fixture(scope="module")
def mini() -> Path:
    if not (COCO_MINI / "instances.json").is_file():
        pytest.skip(f"coco-mini test data not found at {COCO_MINI} (the shared data folder)")
    return COCO_MINI


def _source(root: Path, captions: bool = True, **settings: object) -> CopyPasteSource:
    paths = {"images": str(root / "images"), "instances": str(root / "instances.json")}
    if captions:
        paths["captions"] = str(root / "captions.json")
    source = CopyPasteSource(CopyPasteSettings(**paths, **settings))
    source.check()
    return source


def _load(source: CopyPasteSource, indices: list[int], run_seed: int = 0) -> list[Record]:
    items = list(source.items())
    records = [Record(id=f"r{i}", source_index=i, seed=derive_seed(run_seed, f"r{i}")) for i in indices]
    return source.load([(r, items[i]) for r, i in zip(records, indices, strict=True)])


def _grow(mask: np.ndarray, px: int) -> np.ndarray:
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(mask.astype(np.uint8), disk).astype(bool)


def _bbox(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


# -- a tiny dataset built in the test: shapes with polygon annotations, and bad items -------------
def _tiny(root: Path) -> Path:
    """Images 1 (good: a dog and a cat), 2 (missing), 3 (corrupt), 4 (only a tiny and a crowd object)."""
    (root / "images").mkdir(parents=True)
    canvas = np.zeros((100, 120, 3), np.uint8)
    canvas[:] = np.linspace(60, 200, 120, dtype=np.uint8)[None, :, None]
    good = canvas.copy()
    cv2.rectangle(good, (10, 10), (49, 39), (200, 40, 40), -1)  # dog: x 10..49, y 10..39
    cv2.rectangle(good, (60, 50), (99, 84), (40, 40, 220), -1)  # cat: x 60..99, y 50..84
    Image.fromarray(good).save(root / "images" / "good.png")
    (root / "images" / "corrupt.png").write_bytes(b"not a png at all")
    Image.fromarray(canvas).save(root / "images" / "tiny.png")

    def rect(aid: int, image: int, cat: int, x: int, y: int, w: int, h: int, crowd: int = 0) -> dict:
        poly = [x, y, x + w, y, x + w, y + h, x, y + h]
        return {"id": aid, "image_id": image, "category_id": cat, "segmentation": [poly],
                "area": w * h, "bbox": [x, y, w, h], "iscrowd": crowd}  # fmt: skip

    images = [
        {"id": i, "file_name": name, "width": 120, "height": 100}
        for i, name in ((1, "good.png"), (2, "missing.png"), (3, "corrupt.png"), (4, "tiny.png"))
    ]
    annotations = [
        rect(11, 1, 18, 10, 10, 40, 30), rect(12, 1, 17, 60, 50, 40, 35),
        rect(21, 2, 18, 10, 10, 40, 30), rect(31, 3, 18, 10, 10, 40, 30),
        rect(41, 4, 18, 10, 10, 5, 5), rect(42, 4, 1, 40, 40, 40, 40, crowd=1),
    ]  # fmt: skip
    categories = [
        {"id": 1, "name": "person", "supercategory": "person"},
        {"id": 17, "name": "cat", "supercategory": "animal"},
        {"id": 18, "name": "dog", "supercategory": "animal"},
    ]
    instances = {"images": images, "annotations": annotations, "categories": categories}
    (root / "instances.json").write_text(json.dumps(instances))
    captions = {"annotations": [{"image_id": 1, "id": 1, "caption": "A dog sits next to a cat."}]}
    (root / "captions.json").write_text(json.dumps(captions))
    return root


def test_registered_and_picklable(tmp_path: Path) -> None:
    assert SOURCES["copy_paste"] is CopyPasteSource
    source = _source(_tiny(tmp_path))
    copy = pickle.loads(pickle.dumps(source))
    assert copy.fingerprint() == source.fingerprint()


def test_items_are_images_by_id_then_edit_index(tmp_path: Path) -> None:
    source = _source(_tiny(tmp_path), edits_per_image=2)
    assert list(source.items()) == [(1, 0), (1, 1), (2, 0), (2, 1), (3, 0), (3, 1), (4, 0), (4, 1)]
    assert source.count() == 8


def test_fingerprint_follows_content_and_settings_not_paths(tmp_path: Path) -> None:
    root = _tiny(tmp_path / "x")
    first = _source(root).fingerprint()
    assert len(first) == 16
    moved = tmp_path / "y"
    (moved / "images").mkdir(parents=True)
    for name in ("instances.json", "captions.json"):
        (moved / name).write_bytes((root / name).read_bytes())
    assert _source(moved).fingerprint() == first
    assert _source(root, edits_per_image=3).fingerprint() != first
    assert _source(root, captions=False).fingerprint() != first
    (moved / "captions.json").write_text(json.dumps({"annotations": []}))
    assert _source(moved).fingerprint() != first


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "source.instances: file '"),
        ("{not json", "is not a COCO instances file: not JSON"),
        ('{"images": []}', "expected an object with lists images, annotations, categories"),
        ('{"images": [{"id": "1"}], "annotations": [], "categories": []}', "images[0].id must be int"),
    ],
)
def test_a_missing_or_malformed_instances_file_is_a_usage_error(
    tmp_path: Path, content: str | None, message: str
) -> None:
    (tmp_path / "images").mkdir()
    if content is not None:
        (tmp_path / "instances.json").write_text(content)
    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("]", r"\]")) as info:
        _source(tmp_path, captions=False)
    assert "\n" not in str(info.value)


def test_bad_items_are_rejected_with_reasons(tmp_path: Path) -> None:
    root = _tiny(tmp_path / "data")
    recipe = {"source": {"type": "copy_paste", "images": str(root / "images"),
                         "instances": str(root / "instances.json"), "edits_per_image": 1}}  # fmt: skip
    imgdiff.run(recipe, tmp_path / "run")
    records = imgdiff.load_records(tmp_path / "run")
    assert [r.reason.split(":")[0] if r.reason else None for r in records] == [
        None, "missing_file", "corrupt_image", "no_object",
    ]  # fmt: skip
    assert records[1].reason == "missing_file: image 'missing.png' not found"
    assert all(r.rejected_by == "source" for r in records[1:])


def test_edits_on_the_tiny_dataset_change_the_object_and_edit_the_caption(tmp_path: Path) -> None:
    source = _source(_tiny(tmp_path), edits_per_image=2, removal_share=0.0)
    records = _load(source, [0, 1])
    # two eligible objects, two edits: each is replaced once, by the other category
    assert sorted((r.edit.old, r.edit.new) for r in records) == [("cat", "dog"), ("dog", "cat")]
    captions = {r.edit.old: r.caption_b for r in records}
    assert captions == {"dog": "A cat sits next to a cat.", "cat": "A dog sits next to a dog."}
    assert all(r.caption_a == "A dog sits next to a cat." and r.kind == "replacement" for r in records)
    removals = _load(_source(tmp_path, edits_per_image=3, removal_share=1.0), [0, 1, 2])
    # removing an object twice would repeat a pair: once each object had its edit, edits replace
    assert [r.kind for r in removals] == ["removal", "removal", "replacement"]
    removals = removals[:2]
    assert all(r.edit.new == "" for r in removals)
    captions = {r.edit.old: r.caption_b for r in removals}
    # "next to a cat" can go; "A dog" is the subject, so both captions come from the labels
    assert captions == {"cat": "A dog sits.", "dog": "a photo with a cat"}


def test_captions_come_from_the_labels_without_a_caption_file(tmp_path: Path) -> None:
    source = _source(_tiny(tmp_path), captions=False, edits_per_image=1, removal_share=1.0)
    (record,) = _load(source, [0])
    gone = record.edit.old
    kept = "cat" if gone == "dog" else "dog"
    assert record.caption_a in ("a photo with a cat and a dog", "a photo with a dog and a cat")
    assert record.caption_b == f"a photo with a {kept}"


# -- captions ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("caption", "old", "new", "count", "edited"),
    [
        ("Two dogs sit on a couch.", "dog", "cat", 2, "Two cats sit on a couch."),
        ("A puppy sleeps on a sofa.", "dog", "elephant", 1, "An elephant sleeps on a sofa."),
        ("A man and a woman walk a dog.", "person", "horse", 2, "A horse and a woman walk a dog."),
        ("A dog chases another dog.", "dog", "cat", 2, "A cat chases another dog."),
        ("A dog on a bed. The dog sleeps.", "dog", "cat", 1, "A cat on a bed. The cat sleeps."),
        ("A red stop sign by a road.", "stop sign", "umbrella", 1, "An umbrella by a road."),
        ("People waiting at a bus stop.", "bus", "car", 1, None),  # "bus stop" is no bus
        ("A hot dog on a plate.", "dog", "cat", 1, None),
        ("A laptop computer on a desk.", "laptop", "book", 1, "A book on a desk."),
        ("A herd of sheep in a field.", "sheep", "cow", 5, "A herd of cows in a field."),  # a collective
        ("The sheep are in a field.", "sheep", "cow", 3, "The cows are in a field."),  # the verb tells
        ("A white sheep in a field.", "sheep", "cow", 1, "A cow in a field."),
        ("A kitchen with a stove.", "dog", "cat", 1, None),
    ],
)
def test_replacement_captions(caption: str, old: str, new: str, count: int, edited: str | None) -> None:
    assert rename_category(caption, old, new, count) == edited


@pytest.mark.parametrize(
    ("caption", "old", "edited"),
    [
        ("A man riding a horse on a beach.", "horse", "A man on a beach."),
        (
            "A kitchen with a stove, a sink and a refrigerator.",
            "sink",
            "A kitchen with a stove and a refrigerator.",
        ),
        (
            "A kitchen with a stove, a sink and a refrigerator.",
            "refrigerator",
            "A kitchen with a stove and a sink.",
        ),
        ("A plate with a sandwich and a cup of coffee.", "sandwich", "A plate with a cup of coffee."),
        ("A plate with a sandwich and a cup of coffee.", "cup", None),  # "a cup of": left to the labels
        ("A dog sits on a couch.", "dog", None),  # the subject cannot go
        ("Two dogs sit on a couch.", "dog", None),  # a plural: left to the labels
    ],
)
def test_removal_captions(caption: str, old: str, edited: str | None) -> None:
    assert remove_category(caption, old) == edited


def test_every_category_has_words_and_no_word_names_two() -> None:
    owner: dict[str, str] = {}
    for category, (singular, plural) in NOUNS.items():
        assert singular and plural, category
        for word in singular + plural:
            assert owner.setdefault(word, category) == category, word
    assert len(NOUNS) == 80
    assert label_caption({"dog": 1, "person": 2, "car": 1, "bird": -1}) == (
        "a photo with a dog, two people, a car and many birds"
    )


# -- masks ---------------------------------------------------------------------------------------
def _rle_string(runs: list[int]) -> str:
    """pycocotools' rleToString, for the test: 6 bits a character, deltas from two runs back."""
    out = []
    for i, run in enumerate(runs):
        x = run - runs[i - 2] if i > 2 else run
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            out.append(chr((c | 0x20 if more else c) + 48))
    return "".join(out)


def test_masks_decode_from_polygons_and_both_rles(mini: Path) -> None:
    data = coco.read_instances(mini / "instances.json")
    crowd = next(a for anns in data.by_image.values() for a in anns if isinstance(a.segmentation, dict))
    info = data.images[crowd.image_id]
    mask = coco.decode_mask(crowd.segmentation, info.height, info.width)
    x, y, w, h = crowd.bbox
    assert _bbox(mask) == [x, y, x + w + 1, y + h + 1]  # COCO's toBbox counts the last pixel out
    packed = dict(crowd.segmentation, counts=_rle_string(crowd.segmentation["counts"]))
    assert np.array_equal(coco.decode_mask(packed, info.height, info.width), mask)
    polygons = [a for anns in data.by_image.values() for a in anns if isinstance(a.segmentation, list)]
    errors = []
    for ann in polygons:
        info = data.images[ann.image_id]
        if ann.area > 2000:
            errors.append(
                abs(coco.decode_mask(ann.segmentation, info.height, info.width).sum() / ann.area - 1)
            )
    assert np.median(errors) < 0.015 and max(errors) < 0.05


# -- pixels, truth and determinism on coco-mini ---------------------------------------------------
@pytest.fixture(scope="module")
def mini_records(mini: Path) -> list[Record]:
    return _load(_source(mini), list(range(0, 104, 5)))


def test_pixels_change_only_inside_the_truth_masks(mini: Path, mini_records: list[Record]) -> None:
    settings = CopyPasteSettings(images="x", instances="y")
    names = set(NOUNS)
    kinds = set()
    for record in mini_records:
        assert record.kept, record.reason
        a, b, masks = record.artifacts["a"], record.artifacts["b"], record.artifacts["masks"]
        truth_a, truth_b = masks["truth_a"], masks["truth_b"]
        assert a.dtype == b.dtype == np.uint8 and a.shape == b.shape and truth_a.shape == a.shape[:2]
        changed = (a != b).any(axis=2)
        kinds.add(record.kind)
        if record.kind == "removal":
            assert not truth_b.any() and record.edit.new == ""
            allowed = _grow(truth_a, settings.dilate + 1)
        else:
            assert truth_b.any() and record.edit.new in names and record.edit.new != record.edit.old
            blend = settings.dilate + int(np.ceil(3 * settings.feather)) + 1
            allowed = _grow(truth_a, settings.dilate + 1) | _grow(truth_b, blend)
        assert not (changed & ~allowed).any(), record.id
        assert changed[truth_a].mean() > 0.5  # the object really went
        assert record.edit.old in names
        (truth,) = record.truth
        assert truth.role == "changed" and truth.box == _bbox(truth_a | truth_b)
    assert kinds == {"replacement", "removal"}


def test_same_seed_same_pixels_whatever_the_batch(mini: Path, mini_records: list[Record]) -> None:
    source = _source(mini)
    indices = list(range(0, 104, 5))
    alone = [_load(source, [i])[0] for i in indices[:4]]
    mixed = _load(source, [indices[3], 7, indices[1], indices[0], 50, indices[2]])
    shuffled = {r.id: r for r in mixed}
    for record, single in zip(mini_records[:4], alone, strict=True):
        for other in (single, shuffled[record.id]):
            assert other == record
            for name in ("a", "b"):
                assert np.array_equal(other.artifacts[name], record.artifacts[name])
            for name in ("truth_a", "truth_b"):
                assert np.array_equal(other.artifacts["masks"][name], record.artifacts["masks"][name])
    reseeded = _load(source, indices, run_seed=1)
    pairs = zip(reseeded, mini_records, strict=True)
    assert sum(not np.array_equal(x.artifacts["b"], y.artifacts["b"]) for x, y in pairs) >= 4


def test_a_photo_with_enough_objects_gets_distinct_targets(mini: Path) -> None:
    source = _source(mini)
    data = coco.read_instances(mini / "instances.json")

    def large(image_id: int) -> int:
        info = data.images[image_id]
        return sum(
            not a.iscrowd and a.area > 0.03 * info.width * info.height for a in data.by_image[image_id]
        )

    image_id = max(sorted(data.images), key=large)
    assert large(image_id) >= 4
    start = sorted(data.images).index(image_id) * 4
    records = _load(source, list(range(start, start + 4)))
    assert len({repr(_bbox(r.artifacts["masks"]["truth_a"])) for r in records}) == 4


def test_a_real_run_writes_images_masks_and_truth(mini: Path, tmp_path: Path) -> None:
    recipe = {
        "source": {"type": "copy_paste", "images": str(mini / "images"),
                   "instances": str(mini / "instances.json"), "captions": str(mini / "captions.json")},
        "stages": [{"pair_filter": {"method": "pixel"}}, {"regions": {"method": "pixel"}}],
    }  # fmt: skip
    imgdiff.run(recipe, tmp_path / "run", limit=8)
    records = imgdiff.load_records(tmp_path / "run")
    assert len(records) == 8 and all(r.rejected_by != "source" for r in records)
    for record in records:
        a = np.asarray(Image.open(tmp_path / "run" / record.images["a"]))
        masks = np.load(tmp_path / "run" / record.aux["masks"])
        assert sorted(masks.files) == ["truth_a", "truth_b"] and masks["truth_a"].shape == a.shape[:2]
        assert record.truth[0].box == _bbox(masks["truth_a"] | masks["truth_b"])
        assert record.caption_a and record.caption_b and record.caption_a != record.caption_b
    assert sum(r.kept for r in records) >= 6
