"""Source `photos`: captions with their photos as image a (COCO captions or JSON lines), bad items
rejected with reasons, refusals at check."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import SHARED_DATA
from imgdiff.errors import UsageError
from imgdiff.record import Record
from imgdiff.sources import SOURCES
from imgdiff.sources.photos import PhotosSettings, PhotosSource

COCO_MINI = SHARED_DATA / "coco-mini"


def _source(images: Path, path: Path, **settings: object) -> PhotosSource:
    source = PhotosSource(PhotosSettings(images=str(images), path=str(path), **settings))
    source.check()
    return source


def _load(source: PhotosSource) -> list[Record]:
    items = list(source.items())
    records = [Record(id=f"r{i}", source_index=i, seed=i) for i in range(len(items))]
    return source.load(list(zip(records, items, strict=True)))


def test_coco_captions_give_the_photo_as_image_a() -> None:
    if not (COCO_MINI / "captions.json").is_file():
        pytest.skip("coco-mini test data not found")
    source = _source(COCO_MINI / "images", COCO_MINI / "captions.json")
    assert SOURCES["photos"] is PhotosSource
    pickle.loads(pickle.dumps(source))
    records = _load(source)
    data = json.loads((COCO_MINI / "captions.json").read_text())
    assert len(records) == len(data["images"])  # per_image 1
    names = {image["id"]: image["file_name"] for image in data["images"]}
    first = data["annotations"][0]
    assert records[0].kept and records[0].caption_a == first["caption"].strip()
    with Image.open(COCO_MINI / "images" / names[first["image_id"]]) as photo:
        assert np.array_equal(records[0].artifacts["a"], np.asarray(photo.convert("RGB")))


def test_json_lines_name_their_photos_and_bad_items_are_rejected(tmp_path: Path) -> None:
    images = tmp_path / "photos"
    images.mkdir()
    Image.fromarray(np.full((8, 12, 3), 90, np.uint8)).save(images / "ok.png")
    (images / "broken.jpg").write_bytes(b"not a jpeg")
    lines = [
        {"file_name": "ok.png", "caption": "a cat on a bench"},
        {"file_name": "gone.png", "caption": "a dog"},
        {"file_name": "broken.jpg", "caption": "a car"},
        {"caption": "no photo named"},
        {"file_name": "ok.png", "caption": "  "},
    ]
    path = tmp_path / "captions.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\nnot json\n")
    records = _load(_source(images, path))
    assert records[0].kept and records[0].artifacts["a"].shape == (8, 12, 3)
    codes = [r.reason.partition(":")[0] for r in records[1:]]
    assert codes == ["missing_file", "corrupt_image", "missing_key", "empty_caption", "malformed_json"]


def test_unknown_image_id_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    path = tmp_path / "captions.json"
    path.write_text(json.dumps({"images": [], "annotations": [{"image_id": 5, "caption": "a cat"}]}))
    (record,) = _load(_source(tmp_path / "images", path))
    assert record.reason == "missing_key: image_id 5 is not in the images list"


def test_refusals_and_fingerprint(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    text = tmp_path / "captions.txt"
    text.write_text("a cat\n")
    with pytest.raises(UsageError, match="names no photos"):
        _source(tmp_path / "images", text)
    path = tmp_path / "captions.jsonl"
    path.write_text('{"file_name": "x.png", "caption": "a cat"}\n')
    with pytest.raises(UsageError, match="source.images: folder"):
        _source(tmp_path / "nowhere", path)
    one = _source(tmp_path / "images", path)
    moved = tmp_path / "elsewhere.jsonl"
    moved.write_bytes(path.read_bytes())
    assert _source(tmp_path / "images", moved).fingerprint() == one.fingerprint()
    assert _source(tmp_path / "images", path, per_image=None).fingerprint() != one.fingerprint()
