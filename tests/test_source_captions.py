"""Source `captions`: the four file formats, per-image selection, hygiene, bad items, and a recipe
captions -> edit run through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import imgdiff
from imgdiff.cli import main
from imgdiff.errors import UsageError
from imgdiff.record import Record
from imgdiff.sources import SOURCES
from imgdiff.sources.captions import CaptionsSource

COCO = {
    "images": [{"id": 1}, {"id": 2}],
    "annotations": [
        {"image_id": 1, "id": 10, "caption": "A dog on a sofa."},
        {"image_id": 1, "id": 11, "caption": "A brown dog lying on a couch."},
        {"image_id": 2, "id": 12, "caption": ' "A man riding a horse."\n'},
    ],
}


def _source(path: Path, **settings: object) -> CaptionsSource:
    source = SOURCES["captions"](CaptionsSource.Settings(path=str(path), **settings))
    assert isinstance(source, CaptionsSource)
    source.check()
    return source


def _run(path: Path, out: Path, **source: object) -> list[Record]:
    recipe = {"seed": 0, "source": {"type": "captions", "path": str(path), **source}, "stages": []}
    imgdiff.run(recipe, out)
    return imgdiff.load_records(out)


@pytest.mark.parametrize(
    ("name", "content", "captions"),
    [
        ("coco.json", json.dumps(COCO), ["A dog on a sofa.", "A man riding a horse."]),
        (
            "list.json",
            json.dumps([{"image_id": 5, "caption": "A cat."}, {"caption": "A bus."}, {"caption": "A car."}]),
            ["A cat.", "A bus.", "A car."],  # items without an image id are images of their own
        ),
        (
            "lines.jsonl",
            '{"image_id": 3, "caption": "A cat."}\n\n{"image_id": 3, "caption": "A bus."}\n',
            ["A cat."],
        ),
        ("lines.txt", "A cat on a mat.\n\n  “A dog in a fog.”  \n", ["A cat on a mat.", "A dog in a fog."]),
    ],
)
def test_formats(tmp_path: Path, name: str, content: str, captions: list[str]) -> None:
    path = tmp_path / name
    path.write_text(content)
    records = _run(path, tmp_path / "run")
    assert [r.caption_a for r in records] == captions
    assert all(r.kept and r.kind == "unknown" and not r.images and r.caption_b == "" for r in records)
    assert _source(path).count() == len(captions)


def test_per_image_keeps_the_first_captions_of_each_image(tmp_path: Path) -> None:
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(COCO))
    assert [r.caption_a for r in _run(path, tmp_path / "all", per_image=None)] == [
        "A dog on a sofa.",
        "A brown dog lying on a couch.",
        "A man riding a horse.",
    ]
    assert len(_run(path, tmp_path / "two", per_image=2)) == 3
    with pytest.raises(UsageError, match="per_image"):
        imgdiff.run({"source": {"type": "captions", "path": str(path), "per_image": 0}}, tmp_path / "zero")


def test_bad_items_are_rejected_with_their_reason(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    lines = [
        {"caption": "A good caption."},
        {"caption": 3},
        {"caption": "   "},
        {"caption": '""'},
        {"text": "no caption key"},
        [1, 2],
        "{not json",
        {"caption": "Ａ ﬁre hydrant\u200b by a road"},
    ]
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    records = _run(path, tmp_path / "run")
    assert [r.reason.split(":")[0] if r.reason else None for r in records] == [
        None,
        "not_text",
        "empty_caption",
        "empty_caption",
        "missing_key",
        "malformed_item",
        "malformed_json",
        None,
    ]
    assert all(r.rejected_by == "source" for r in records if not r.kept)
    assert records[-1].caption_a == "A fire hydrant by a road"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.json", None, "not found"),
        ("captions.csv", "a,b", "must end in .json, .jsonl, .txt"),
        ("broken.json", "{", "is not valid JSON"),
        ("shape.json", '{"images": []}', "neither COCO captions"),
    ],
)
def test_unreadable_files_stop_with_one_line(
    tmp_path: Path, name: str, content: str | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(UsageError, match=message) as error:
        _source(path)
    assert "\n" not in str(error.value)


def test_fingerprint_follows_content_and_selection_not_location(tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "c.txt", tmp_path / "b" / "c.txt"
    for path in (first, second):
        path.parent.mkdir()
        path.write_text("A cat.\n")
    assert _source(first).fingerprint() == _source(second).fingerprint()
    assert _source(first).fingerprint() != _source(first, per_image=None).fingerprint()
    second.write_text("A dog.\n")
    assert _source(first).fingerprint() != _source(second).fingerprint()


def test_recipe_captions_then_edit_through_the_cli(tmp_path: Path) -> None:
    captions = tmp_path / "captions.json"
    captions.write_text(
        json.dumps(
            [
                {"image_id": i, "caption": c}
                for i, c in enumerate(["A dog on a sofa.", "A cat on a bench.", "A sky."])
            ]
        )
    )
    recipe = {
        "seed": 0,
        "batch_size": 2,
        "source": {"type": "captions", "path": str(captions)},
        "stages": [{"edit": {"method": "lexicon", "n_edits": 2}}],
    }
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["run", str(tmp_path / "recipe.yaml"), "--out", str(tmp_path / "run")]) == 0
    lines = [json.loads(line) for line in (tmp_path / "run" / "records.jsonl").read_text().splitlines()]
    kept = [line for line in lines if line["status"] == "kept"]
    assert len(kept) == 4 and all(line["kind"] == "replacement" and line["caption_b"] for line in kept)
    assert all(
        line["edit"]["old"] in line["caption_a"] and line["edit"]["new"] in line["caption_b"] for line in kept
    )
    assert [line["reason"].split(":")[0] for line in lines if line["status"] == "rejected"] == ["no_object"]
    stats = json.loads((tmp_path / "run" / "stats.json").read_text())
    assert stats["stages"][-1]["stage"] == "edit" and stats["stages"][-1]["rejected"] == {"no_object": 1}
    before = (tmp_path / "run" / "records.jsonl").read_bytes()
    assert main(["run", str(tmp_path / "recipe.yaml"), "--out", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "records.jsonl").read_bytes() == before


def test_a_json_file_is_parsed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(COCO))
    parsed = []
    loads = json.loads
    monkeypatch.setattr("imgdiff.sources.captions.json.loads", lambda data: parsed.append(1) or loads(data))
    source = _source(path)  # checks the file
    assert source.count() == 2 and len(list(source.items())) == 2 and len(parsed) == 1
