"""Each source item is isolated, confined to its folder and bounded in size.

A bad item (a JSON line nested 100,000 deep, a garbage RLE, an unsafe path, an oversized image, any
exception of one item) becomes a record rejected by `source` with its reason; the run completes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import imgdiff
from fuzz_inputs import coco_files, write_images
from imgdiff.errors import UsageError
from imgdiff.record import Record
from imgdiff.sources.captions import CaptionsSettings, CaptionsSource
from imgdiff.sources.pairs import PairsSettings, PairsSource

GOOD = {"image_a": "a.png", "image_b": "b.png"}


def _pairs(folder: Path, *items: object, **settings: object) -> PairsSource:
    write_images(folder)
    lines = [item if isinstance(item, str) else json.dumps(item) for item in items]
    (folder / "pairs.jsonl").write_text("\n".join(lines) + "\n")
    return PairsSource(PairsSettings(path=str(folder / "pairs.jsonl"), **settings))


def _loaded(source: PairsSource) -> list[Record]:
    items = list(source.items())
    return source.load(
        [(Record(id=f"{i:012x}", source_index=i, seed=i), item) for i, item in enumerate(items)]
    )


def test_a_line_nested_100000_deep_is_one_rejected_record_and_the_run_completes(tmp_path) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    source = _pairs(tmp_path / "data", GOOD, deep, {"image_a": deep[:20]}, GOOD)
    recipe = {"source": {"type": "pairs", "path": str(source.path)}}
    result = imgdiff.run(recipe, tmp_path / "run")
    records = imgdiff.load_records(tmp_path / "run")
    assert [r.status for r in records] == ["kept", "rejected", "rejected", "kept"]
    assert records[1].reason == "malformed_json: nested too deeply"
    assert result.stats["kept"] == 2


def test_any_exception_of_one_item_rejects_only_that_item(tmp_path, monkeypatch) -> None:
    source = _pairs(tmp_path / "data", GOOD, {**GOOD, "caption_a": "boom"}, GOOD)
    real = PairsSource.fill

    def fill(self: PairsSource, record: Record, line: str) -> None:
        if "boom" in line:
            raise ZeroDivisionError("division by zero\nsecond line")
        real(self, record, line)

    monkeypatch.setattr(PairsSource, "fill", fill)
    records = _loaded(source)
    assert [r.status for r in records] == ["kept", "rejected", "kept"]
    assert records[1].reason == "malformed_item: ZeroDivisionError: division by zero"  # the first line
    assert records[1].artifacts == {} and records[1].rejected_by == "source"


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("../a.png", "leads out of the source's folder"),
        ("sub/../../a.png", "leads out of the source's folder"),
        ("ABSOLUTE", "is absolute"),
        ("a\0.png", "NUL"),
    ],
)
def test_paths_out_of_the_pairs_folder_are_unsafe(tmp_path, name, words) -> None:
    write_images(tmp_path)  # a real image outside the pairs folder: refused for where it is
    name = str(tmp_path / "a.png") if name == "ABSOLUTE" else name
    records = _loaded(_pairs(tmp_path / "data", {"image_a": name, "image_b": "b.png"}))
    assert records[0].reason.startswith("unsafe_path: image_a") and words in records[0].reason


def test_outside_paths_are_read_when_the_recipe_allows_them(tmp_path) -> None:
    write_images(tmp_path / "elsewhere")
    outside = str(tmp_path / "elsewhere" / "a.png")
    items = [{"image_a": outside, "image_b": "b.png"}, {"image_a": "../elsewhere/b.png", "image_b": "a.png"}]
    assert all(r.status == "rejected" for r in _loaded(_pairs(tmp_path / "data", *items)))
    allowed = _pairs(tmp_path / "data", *items, allow_outside_paths=True)
    assert all(r.status == "kept" for r in _loaded(allowed))


def test_oversized_images_are_refused_from_their_header_before_decoding(tmp_path) -> None:
    folder = tmp_path / "data"
    source = _pairs(folder, GOOD, {"image_a": "cut.png", "image_b": "b.png"}, max_pixels=32 * 32 - 1)
    whole = (folder / "a.png").read_bytes()
    (folder / "cut.png").write_bytes(whole[: len(whole) // 2])  # a header, then nothing to decode
    records = _loaded(source)
    assert records[0].reason == "too_large: image_a 'a.png' is 32x32 (0.0 MP), over max_pixels 1023"
    assert records[1].reason.startswith("too_large: image_a 'cut.png'")  # not corrupt: never decoded
    assert _loaded(_pairs(folder, {"image_a": "cut.png", "image_b": "b.png"}))[0].reason.startswith(
        "corrupt_image: image_a 'cut.png'"
    )


def test_admission_settings_enter_the_fingerprint_only_when_changed(tmp_path) -> None:
    default = _pairs(tmp_path / "data", GOOD)
    prefix = default.fingerprint_prefix()
    assert prefix == "pairs:v1:"  # runs from before these settings keep their ids
    assert _pairs(tmp_path / "data", GOOD, max_pixels=10).fingerprint() != default.fingerprint()
    assert _pairs(tmp_path / "data", GOOD, allow_outside_paths=True).fingerprint() != default.fingerprint()


def test_a_16_bit_pair_is_stored_scaled_not_white(tmp_path) -> None:
    folder = tmp_path / "data"
    source = _pairs(folder, {"image_a": "g16.png", "image_b": "g16.png"})
    (record,) = _loaded(source)
    assert record.status == "kept" and np.all(record.artifacts["a"] == round(40000 / 257))


def test_a_garbage_rle_leaves_that_object_out_and_the_run_completes(tmp_path) -> None:
    instances, captions = coco_files(tmp_path / "images")
    instances["annotations"][1]["segmentation"]["counts"] = "\x7f\x00garbage" * 3
    instances["images"].append({"id": 3, "file_name": "../1.png", "width": 64, "height": 64})
    (tmp_path / "instances.json").write_text(json.dumps(instances))
    (tmp_path / "captions.json").write_text(json.dumps(captions))
    source = {"type": "copy_paste", "images": str(tmp_path / "images"), "edits_per_image": 1}
    source |= {"instances": str(tmp_path / "instances.json"), "captions": str(tmp_path / "captions.json")}
    result = imgdiff.run({"source": source, "seed": 0}, tmp_path / "run")
    records = imgdiff.load_records(tmp_path / "run")
    assert result.stats["records"] == 3
    assert records[2].reason.startswith("unsafe_path: image '../1.png' leads out")
    assert not any((r.reason or "").startswith("malformed_item") for r in records)


def test_a_coco_file_nested_too_deeply_is_one_line(tmp_path) -> None:
    coco_files(tmp_path / "images")
    (tmp_path / "instances.json").write_text("[" * 100_000 + "]" * 100_000)
    source = {
        "type": "copy_paste",
        "images": str(tmp_path / "images"),
        "instances": str(tmp_path / "instances.json"),
    }
    with pytest.raises(UsageError, match="nested too deeply"):
        imgdiff.run({"source": source}, tmp_path / "run", dry_run=True)


def test_caption_lines_nested_too_deeply_are_rejected_items(tmp_path) -> None:
    path = tmp_path / "captions.jsonl"
    path.write_text('{"caption": "a cat"}\n' + "{" * 50_000 + "\n" + "[" * 100_000 + "]" * 100_000 + "\n")
    source = CaptionsSource(CaptionsSettings(path=str(path)))
    items = list(source.items())
    records = source.load([(Record(id=str(i), source_index=i, seed=i), it) for i, it in enumerate(items)])
    assert [r.reason for r in records][1:] == [
        "malformed_json: Expecting property name enclosed in double quotes at column 2",
        "malformed_json: nested too deeply",
    ]
    assert records[0].caption_a == "a cat"
