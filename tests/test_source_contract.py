"""The contract every registered source runs: ids and order, bad items rejected with reasons,
fingerprint stability. Each source has a small fixture factory here (`FIXTURES`); a source added to
the registry without one fails `test_every_registered_source_has_a_fixture`."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import SHARED_DATA
from imgdiff.engine.batch import by_input
from imgdiff.engine.shard import select
from imgdiff.record import Record, derive_seed, record_id
from imgdiff.sources import SOURCES
from imgdiff.sources.base import Source
from pairs_data import write_pairs

COCO_MINI = SHARED_DATA / "coco-mini"


@dataclass
class SourceFixture:
    settings: dict[str, Any]  # a small good source
    changed: dict[str, Any]  # the same source with other items: another fingerprint
    bad: dict[str, Any] | None  # a source with bad items among good ones (None: it cannot have any)
    bad_codes: set[str]  # the reason codes its bad items are rejected with


def _pairs(tmp: Path) -> SourceFixture:
    good = write_pairs(tmp / "pairs", 4)
    changed = tmp / "changed.jsonl"
    changed.write_text("".join(good.read_text().splitlines(keepends=True)[:3]))
    bad = tmp / "pairs" / "bad.jsonl"
    lines = good.read_text().splitlines()
    bad.write_text(
        "\n".join([lines[0], "{not json", '{"image_a": "nowhere.png", "image_b": "x.png"}', *lines[1:]])
    )
    return SourceFixture(
        {"path": str(good)}, {"path": str(changed)}, {"path": str(bad)}, {"malformed_json", "missing_file"}
    )


def _captions(tmp: Path) -> SourceFixture:
    rows = [{"caption": c} for c in ("A dog on a sofa.", "A cat on a mat.", "A red bus.")]
    good, changed, bad = tmp / "good.jsonl", tmp / "changed.jsonl", tmp / "bad.jsonl"
    good.write_text("".join(json.dumps(r) + "\n" for r in rows))
    changed.write_text("".join(json.dumps(r) + "\n" for r in rows[:2]))
    bad.write_text(f"{json.dumps(rows[0])}\n{{broken\n{json.dumps({'text': 1})}\n{json.dumps(rows[1])}\n")
    return SourceFixture(
        {"path": str(good)}, {"path": str(changed)}, {"path": str(bad)}, {"malformed_json", "missing_key"}
    )


def _copy_paste(tmp: Path) -> SourceFixture:
    if not (COCO_MINI / "instances.json").is_file():
        pytest.skip(f"coco-mini test data not found at {COCO_MINI} (the shared data folder)")
    paths = {
        "images": str(COCO_MINI / "images"),
        "instances": str(COCO_MINI / "instances.json"),
        "captions": str(COCO_MINI / "captions.json"),
    }
    instances = json.loads((COCO_MINI / "instances.json").read_text())
    instances["images"][1]["file_name"] = "not-there.jpg"
    (tmp / "bad.json").write_text(json.dumps(instances))
    instances = json.loads((COCO_MINI / "instances.json").read_text())
    dropped = instances["images"].pop(0)["id"]
    instances["annotations"] = [a for a in instances["annotations"] if a["image_id"] != dropped]
    (tmp / "changed.json").write_text(json.dumps(instances))
    return SourceFixture(
        paths,
        {**paths, "instances": str(tmp / "changed.json")},
        {**paths, "instances": str(tmp / "bad.json")},
        {"missing_file"},
    )


def _parquet(tmp: Path) -> SourceFixture:
    import pyarrow.parquet as pq

    from test_source_parquet import write_edits

    # 10 good rows, then a null image, a corrupt one, two sizes and one without captions
    table = pq.read_table(write_edits(tmp / "edits"))
    pq.write_table(table.slice(0, 10), tmp / "good.parquet")
    pq.write_table(table.slice(0, 6), tmp / "changed.parquet")
    pq.write_table(table.take([0, 10, 11, 12, 1, 2]), tmp / "bad.parquet")  # the bad rows come early
    columns = {"image_a": "input_image", "image_b": "edited_image"}
    return SourceFixture(
        {"path": str(tmp / "good.parquet"), **columns},
        {"path": str(tmp / "changed.parquet"), **columns},
        {"path": str(tmp / "bad.parquet"), **columns},
        {"missing_key", "corrupt_image", "size_mismatch"},
    )


def _photos(tmp: Path) -> SourceFixture:
    import numpy as np
    from PIL import Image

    images = tmp / "photos"
    images.mkdir()
    for i in range(3):
        Image.fromarray(np.full((8, 12, 3), 40 * i, np.uint8)).save(images / f"{i}.png")
    rows = [{"file_name": f"{i}.png", "caption": f"a cat on bench {i}"} for i in range(3)]
    good, changed, bad = tmp / "good.jsonl", tmp / "changed.jsonl", tmp / "bad.jsonl"
    good.write_text("".join(json.dumps(r) + "\n" for r in rows))
    changed.write_text("".join(json.dumps(r) + "\n" for r in rows[:2]))
    gone, outside = {**rows[0], "file_name": "gone.png"}, {**rows[0], "file_name": "../0.png"}
    bad.write_text("".join(json.dumps(r) + "\n" for r in (rows[0], gone, outside, rows[1])))
    folder = {"images": str(images)}
    return SourceFixture(
        {"path": str(good), **folder},
        {"path": str(changed), **folder},
        {"path": str(bad), **folder},
        {"missing_file", "unsafe_path"},
    )


def _synthetic(tmp: Path) -> SourceFixture:
    # Every index is a valid item: the source has no bad items to reject.
    return SourceFixture({"count": 4, "size": 64}, {"count": 4, "size": 96}, None, set())


FIXTURES: dict[str, Callable[[Path], SourceFixture]] = {
    "pairs": _pairs,
    "captions": _captions,
    "copy_paste": _copy_paste,
    "synthetic": _synthetic,
    "parquet": _parquet,
    "photos": _photos,
}
TYPES = sorted(SOURCES)


def _source(kind: str, settings: dict[str, Any]) -> Source:
    cls = SOURCES[kind]
    source = cls(cls.Settings(**settings))
    source.check()
    return source


def _load(source: Source, limit: int = 4) -> list[Record]:
    """What the engine does for one batch: number the items, make their records, load them."""
    fingerprint = source.fingerprint()
    batch = []
    for index, raw in select(source, limit, None):
        rid = record_id(fingerprint, index)
        batch.append((Record(id=rid, source_index=index, seed=derive_seed(0, rid)), raw))
    loaded = source.load(batch)
    by_input("source", [r for r, _ in batch], loaded)  # an output for every item: reject, never drop
    return loaded


@pytest.mark.parametrize("kind", TYPES)
def test_every_registered_source_has_a_fixture(kind: str) -> None:
    assert kind in FIXTURES, f"source {kind} has no contract fixture: add a factory to FIXTURES in {__file__}"
    assert SOURCES[kind].type == kind


@pytest.mark.parametrize("kind", TYPES)
def test_ids_and_order_are_stable(kind: str, tmp_path: Path) -> None:
    fixture = FIXTURES[kind](tmp_path)
    first, second = _source(kind, fixture.settings), _source(kind, fixture.settings)
    assert list(first.items()) == list(second.items())
    loaded = _load(first)
    assert loaded, "the fixture source yields no items"
    assert [r.source_index for r in loaded] == sorted(r.source_index for r in loaded)
    assert [r.id for r in loaded] == [record_id(first.fingerprint(), r.source_index) for r in loaded]
    assert [r.to_dict() for r in loaded] == [r.to_dict() for r in _load(second)]


@pytest.mark.parametrize("kind", TYPES)
def test_bad_items_are_rejected_with_reasons(kind: str, tmp_path: Path) -> None:
    fixture = FIXTURES[kind](tmp_path)
    if fixture.bad is None:
        pytest.skip(f"{kind}: every item is valid by construction")
    loaded = _load(_source(kind, fixture.bad), limit=6)  # the fixtures' bad items come early
    rejected = [r for r in loaded if r.rejected_by == "source"]
    assert {r.reason.code for r in rejected} == fixture.bad_codes, [r.reason for r in rejected]
    assert all(r.reason.detail for r in rejected), "a reason says what was wrong"
    assert any(r.kept for r in loaded), "the good items among the bad ones still load"


@pytest.mark.parametrize("kind", TYPES)
def test_fingerprint_is_stable_and_follows_the_items(kind: str, tmp_path: Path) -> None:
    fixture = FIXTURES[kind](tmp_path)
    fingerprint = _source(kind, fixture.settings).fingerprint()
    assert fingerprint == _source(kind, fixture.settings).fingerprint()
    assert fingerprint == _source(kind, json.loads(json.dumps(fixture.settings))).fingerprint()
    assert fingerprint != _source(kind, fixture.changed).fingerprint()
