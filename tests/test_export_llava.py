from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import imgdiff
from conftest import tree_bytes
from imgdiff.errors import UsageError
from imgdiff.export import EXPORTERS, export_run, pictures
from imgdiff.export.llava import QUESTION, LlavaExporter
from imgdiff.png import read_rows
from imgdiff.record import Record, Region
from imgdiff.render import side_by_side
from imgdiff.store import ImageLoader, RunStore
from pairs_data import write_pairs


def _regions() -> list[Region]:
    """Boxes as `describe` leaves them: 0 and 3 accepted, 1 skipped, 2 never described."""
    return [
        Region(box=[4, 4, 20, 20], source="diff", difference="A cube became a ball."),
        Region(
            box=[30, 30, 40, 40], source="diff", difference="Skipped.", rejected_by="describe", reason="x"
        ),
        Region(box=[0, 0, 8, 8], source="diff"),
        Region(box=[40, 2, 63, 30], source="diff", difference="A lamp is gone."),
    ]


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A real run of the `pairs` source (5 pairs) whose records carry hand-made described boxes."""
    out = tmp_path / "run"
    recipe = {"seed": 0, "source": {"type": "pairs", "path": str(write_pairs(tmp_path / "pairs", 5))}}
    imgdiff.run(recipe, out)
    records = imgdiff.load_records(out)
    for record in records:
        record.regions = _regions()
    records[1].reject("describe", "no_regions: none of 4 boxes accepted")
    RunStore(out).write_records(records)
    return out


def _data(folder: Path) -> list[dict]:
    return json.loads((folder / "data.json").read_text(encoding="utf-8"))


def test_llava_is_registered_and_unknown_formats_name_it(run_dir: Path) -> None:
    assert EXPORTERS["llava"] is LlavaExporter
    with pytest.raises(UsageError, match="unknown format 'lava'.*did you mean 'llava'"):
        export_run(run_dir, ["lava"])


def test_one_sample_per_kept_record_and_accepted_described_box(run_dir: Path) -> None:
    summary = export_run(run_dir, ["llava"])["llava"]
    folder = run_dir / "export" / "llava"
    records = imgdiff.load_records(run_dir)
    expected = [f"{r.id}_{k}" for r in records if r.kept for k in (0, 3)]
    data = _data(folder)
    assert [entry["id"] for entry in data] == expected
    assert summary == {"format": "llava", "pairs": 4, "samples": 8, "files": 10}
    for entry in data:
        human, gpt = entry["conversations"]
        assert human == {"from": "human", "value": "<image>\n" + QUESTION}
        assert gpt["from"] == "gpt" and gpt["value"] in ("A cube became a ball.", "A lamp is gone.")
        assert entry["image"] == f"images/{entry['id'][:2]}/{entry['id']}.png"


def test_images_are_the_pair_side_by_side_with_that_box(run_dir: Path) -> None:
    export_run(run_dir, ["llava"])
    folder = run_dir / "export" / "llava"
    by_id = {r.id: r for r in imgdiff.load_records(run_dir)}
    loader = ImageLoader(run_dir)
    for entry in _data(folder):
        record_id, k = entry["id"].rsplit("_", 1)
        record = by_id[record_id]
        want = side_by_side(loader.load(record, "a"), loader.load(record, "b"), record.regions[int(k)].box)
        with Image.open(folder / entry["image"]) as image:
            assert image.format == "PNG" and np.array_equal(np.asarray(image), want)
    assert sorted(p.name for p in (folder / "images").rglob("*.png")) == sorted(
        e["id"] + ".png" for e in _data(folder)
    )


def test_card_gives_counts_funnel_recipe_and_licences(run_dir: Path) -> None:
    export_run(run_dir, ["llava"])
    card = (run_dir / "export" / "llava" / "README.md").read_text(encoding="utf-8")
    assert "- pairs: 4" in card and "- samples: 8" in card
    assert "| source | 5 | 5 |" in card
    assert "The licences of the sources and models named in the recipe apply." in card
    assert "- source `pairs`: user-supplied images: the user's licence" in card
    assert "```yaml\nseed: 0\n" in card and "<image>" in card and "- imgdiff: 0.1.0" in card


def test_same_records_give_identical_bytes_in_two_folders(run_dir: Path, tmp_path: Path) -> None:
    export_run(run_dir, ["llava"], to=tmp_path / "x")
    export_run(run_dir, ["llava"], to=tmp_path / "y")
    first, second = tree_bytes(tmp_path / "x", "llava"), tree_bytes(tmp_path / "y", "llava")
    assert len(first) == 11  # 8 images, data.json, README.md, the marker
    assert {k.removeprefix("llava/"): v for k, v in first.items()} == {
        k.removeprefix("llava/"): v for k, v in second.items()
    }


def test_unchanged_export_is_skipped_and_a_changed_one_redone(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    original = LlavaExporter.finish
    monkeypatch.setattr(LlavaExporter, "finish", lambda self: calls.append(1) or original(self))
    first = export_run(run_dir, ["llava"])
    assert export_run(run_dir, ["llava"]) == first and len(calls) == 1
    records = imgdiff.load_records(run_dir)
    records[0].regions[0].difference = "A new answer."
    RunStore(run_dir).write_records(records)
    export_run(run_dir, ["llava"])
    assert len(calls) == 2 and _data(run_dir / "export" / "llava")[0]["conversations"][1]["value"] == (
        "A new answer."
    )


def test_an_interrupted_export_leaves_the_previous_one_whole(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    export_run(run_dir, ["llava"])
    before = tree_bytes(run_dir, "export")
    records = imgdiff.load_records(run_dir)
    records[0].regions[0].difference = "Changed."
    RunStore(run_dir).write_records(records)
    written = []

    def failing(sample: object, pair: object, options: object) -> bytes:
        written.append(1)
        if len(written) > 3:
            raise KeyboardInterrupt
        return b"png"

    monkeypatch.setattr(pictures, "_picture", failing)
    with pytest.raises(KeyboardInterrupt):
        export_run(run_dir, ["llava"])
    assert tree_bytes(run_dir, "export") == before
    assert sorted(p.name for p in (run_dir / "export").iterdir()) == ["llava"]


def test_a_crash_between_the_two_renames_is_recovered(run_dir: Path) -> None:
    summary = export_run(run_dir, ["llava"])
    before = tree_bytes(run_dir / "export", "llava")
    (run_dir / "export" / "llava").rename(run_dir / "export" / ".llava.old")  # swapped out, not in
    assert export_run(run_dir, ["llava"]) == summary  # restored, and unchanged, so skipped
    assert tree_bytes(run_dir / "export", "llava") == before
    assert sorted(p.name for p in (run_dir / "export").iterdir()) == ["llava"]


def test_a_run_without_samples_exports_an_empty_list(run_dir: Path) -> None:
    records = [Record.from_dict({**r.to_dict(), "regions": []}) for r in imgdiff.load_records(run_dir)]
    RunStore(run_dir).write_records(records)
    assert export_run(run_dir, ["llava"])["llava"]["samples"] == 0
    assert _data(run_dir / "export" / "llava") == []
    assert "holds no samples" in (run_dir / "export" / "llava" / "README.md").read_text()


def test_pictures_made_from_the_stores_scanlines_equal_those_drawn_from_pixels(
    run_dir: Path, tmp_path: Path
) -> None:
    """The run's images are in the store's own PNG layout, so pictures come from their scanlines;
    the same images saved by Pillow (another layout) are decoded, drawn and encoded: same bytes."""
    export_run(run_dir, ["llava"], to=tmp_path / "scanlines")
    images = sorted((run_dir / "images").rglob("*.png"))
    assert images and all(read_rows(path) is not None for path in images)
    for path in images:
        with Image.open(path) as image:
            image.load()
            image.save(path, format="PNG", compress_level=6)
    assert all(read_rows(path) is None for path in images)
    export_run(run_dir, ["llava"], to=tmp_path / "pixels")
    first, second = tree_bytes(tmp_path / "scanlines", "llava"), tree_bytes(tmp_path / "pixels", "llava")
    assert len(first) == 11 and first == second


def test_a_swapped_framed_choice_shows_b_left_and_the_frame_on_both(run_dir: Path, tmp_path: Path) -> None:
    from imgdiff.export.samples import ChoiceSample

    record = next(r for r in imgdiff.load_records(run_dir) if r.kept)
    box = (10.0, 12.5, 30.0, 40.0)
    sample = ChoiceSample(record, "Which?", ("left", "right"), 0, box=box, swapped=True)
    export_run(run_dir, ["llava"], to=tmp_path / "x", extra_samples=[sample])
    entry = next(e for e in _data(tmp_path / "x" / "llava") if e["id"] == sample.id)
    loader = ImageLoader(run_dir)
    expected = side_by_side(loader.load(record, "b"), loader.load(record, "a"), box)
    with Image.open(tmp_path / "x" / "llava" / entry["image"]) as picture:
        assert np.array_equal(np.asarray(picture.convert("RGB")), expected)


def test_every_file_of_an_export_is_flushed_once_before_the_rename(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pictures are flushed by the background writers, every other file by the final flush."""
    from imgdiff.export import driver, files

    building, final = tmp_path / "x" / ".llava.tmp", tmp_path / "x" / "llava"
    flushed: list[str] = []
    real_fsync, real_write = driver._fsync, files._write_and_flush

    def fsync(path: Path) -> None:
        flushed.append(path.relative_to(building).as_posix())
        real_fsync(path)

    def write(path: Path, data: bytes) -> None:
        flushed.append(path.relative_to(building).as_posix())
        real_write(path, data)

    monkeypatch.setattr(driver, "_fsync", fsync)
    monkeypatch.setattr(files, "_write_and_flush", write)
    export_run(run_dir, ["llava"], to=tmp_path / "x")
    on_disk = [p.relative_to(final).as_posix() for p in final.rglob("*") if p.is_file()]
    assert len(on_disk) == 11 and sorted(flushed) == sorted(on_disk)
