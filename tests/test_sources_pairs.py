from __future__ import annotations

import json
from pathlib import Path

import imgdiff
from conftest import pixel_recipe


def _reasons(tmp_path: Path, lines: list[str]) -> list[str | None]:
    from pairs_data import write_pairs

    pairs = write_pairs(tmp_path / "p", 1)
    pairs.write_text("\n".join(lines) + "\n")
    imgdiff.run(pixel_recipe(pairs), tmp_path / "run")
    return [r.reason if r.rejected_by == "source" else None for r in imgdiff.load_records(tmp_path / "run")]


def test_each_bad_item_is_rejected_with_its_reason(tmp_path: Path) -> None:
    good = {"image_a": "0000_a.png", "image_b": "0000_b.png"}
    lines = [
        json.dumps(good),
        "",  # blank lines are not items
        "[1, 2]",
        json.dumps({**good, "imgae_c": "x"}),
        json.dumps({"image_a": "0000_a.png"}),
        json.dumps({**good, "caption_a": 3}),
        json.dumps({**good, "edit": {"old": 1}}),
        json.dumps({**good, "kind": "swap"}),
        "{not json",
    ]
    reasons = _reasons(tmp_path, lines)
    codes = [r.split(":")[0] if r else None for r in reasons]
    assert codes == [
        None,
        "malformed_item",
        "unknown_key",
        "missing_key",
        "malformed_item",
        "malformed_item",
        "malformed_item",
        "malformed_json",
    ]


def test_size_mismatch_is_rejected(tmp_path: Path) -> None:
    from PIL import Image

    from pairs_data import write_pairs

    pairs = write_pairs(tmp_path / "p", 1)
    Image.new("RGB", (10, 12)).save(pairs.parent / "small.png")
    pairs.write_text(json.dumps({"image_a": "0000_a.png", "image_b": "small.png"}) + "\n")
    imgdiff.run(pixel_recipe(pairs), tmp_path / "run")
    (record,) = imgdiff.load_records(tmp_path / "run")
    assert record.reason == "size_mismatch: image_a is 64x64, image_b is 10x12"


def test_good_pairs_carry_their_fields_and_lossless_copies(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    from pairs_data import write_pairs

    pairs = write_pairs(tmp_path / "p", 1)
    imgdiff.run(pixel_recipe(pairs), tmp_path / "run")
    (record,) = imgdiff.load_records(tmp_path / "run")
    assert (
        record.kind == "replacement" and record.edit.old == "square" and record.caption_b.endswith("circle")
    )
    copied = np.asarray(Image.open(tmp_path / "run" / record.images["a"]))
    assert np.array_equal(copied, np.asarray(Image.open(pairs.parent / "0000_a.png").convert("RGB")))
