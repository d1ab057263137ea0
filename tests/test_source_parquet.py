"""Source `parquet`: an editing-style table (two image columns, captions, an instruction) made here,
through the weight-free pipeline to an export; bad rows rejected with their reasons."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

import imgdiff
from imgdiff.errors import UsageError
from imgdiff.recipe import load_recipe
from pairs_data import draw_pair

ROWS = 10  # and 4 bad ones after them


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_edits(folder: Path) -> Path:
    """Rows as editing datasets keep them: `input_image` as the datasets Image struct, `edited_image`
    as raw bytes, captions and an instruction; then a null image, a corrupt one, two sizes and a
    caption that is not text."""
    rng = np.random.default_rng(5)
    rows = []
    for i in range(ROWS):
        a, b = draw_pair(rng, 96, "replacement")
        rows.append(
            {
                "input_image": {"bytes": _png(a), "path": f"{i}.png"},
                "edited_image": _png(b),
                "input_caption": f"a room with a square {i}",
                "output_caption": f"a room with a circle {i}",
                "instruction": "turn the square into a circle",
                "old": "square",
            }
        )
    good = rows[0]
    small = _png(Image.new("RGB", (32, 32)))
    rows += [
        {**good, "edited_image": None},
        {**good, "edited_image": b"not a png"},
        {**good, "edited_image": small},
        {**good, "input_caption": None, "old": None},  # fine: captions and edit are optional
    ]
    schema = pa.schema(
        [
            ("input_image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
            ("edited_image", pa.binary()),
            ("input_caption", pa.string()),
            ("output_caption", pa.string()),
            ("instruction", pa.string()),
            ("old", pa.string()),
        ]
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "edits.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path, row_group_size=4)
    return path


def _recipe(source: dict) -> dict:
    return {
        "seed": 0,
        "batch_size": 4,
        "source": {
            "type": "parquet",
            "image_a": "input_image",
            "image_b": "edited_image",
            "caption_a": "input_caption",
            "caption_b": "output_caption",
            "edit_old": "old",
            **source,
        },
        "stages": [
            {"pair_filter": {"method": "pixel"}},
            {"regions": {"method": "pixel"}},
            {"describe": {"method": "template"}},
        ],
        "export": ["parquet"],
    }


def test_an_editing_parquet_runs_to_an_export(tmp_path: Path) -> None:
    path = write_edits(tmp_path / "edits")
    result = imgdiff.run(_recipe({"path": str(path)}), tmp_path / "run")
    records = imgdiff.load_records(tmp_path / "run")
    assert len(records) == ROWS + 4
    reasons = {r.source_index: r.reason.split(":")[0] for r in records if r.rejected_by == "source"}
    assert reasons == {ROWS: "missing_key", ROWS + 1: "corrupt_image", ROWS + 2: "size_mismatch"}
    first = records[0]
    assert first.caption_a == "a room with a square 0" and first.edit.old == "square"
    assert records[ROWS + 3].caption_a == "" and records[ROWS + 3].edit is None
    kept = [r for r in records if r.kept]
    assert kept and result.exports["parquet"]["pairs"] == len(kept)
    from datasets import load_dataset

    data = load_dataset("parquet", data_dir=str(tmp_path / "run" / "export" / "parquet" / "data"))["train"]
    assert data.num_rows == result.exports["parquet"]["samples"]
    assert set(data["record_id"]) == {r.id for r in kept}
    assert data[0]["image"].size == (96 * 2 + 20, 96)
    # the same command again redoes nothing; the images came in losslessly
    again = imgdiff.run(_recipe({"path": str(path)}), tmp_path / "run")
    assert all(s["computed"] == 0 for s in again.stats["stages"])
    with Image.open(tmp_path / "run" / first.images["a"]) as stored:
        raw = pq.read_table(path).column("input_image")[0].as_py()["bytes"]
        assert np.array_equal(np.asarray(stored), np.asarray(Image.open(io.BytesIO(raw)).convert("RGB")))


def test_a_dataset_folder_loads_through_datasets(tmp_path: Path) -> None:
    path = write_edits(tmp_path / "edits")
    result = imgdiff.run(_recipe({"dataset": str(path.parent)}), tmp_path / "run")
    by_path = imgdiff.run(_recipe({"path": str(path)}), tmp_path / "run2")
    assert result.stats["stages"][0] == by_path.stats["stages"][0] | {
        "seconds": result.stats["stages"][0]["seconds"]
    }
    assert result.exports["parquet"]["samples"] == by_path.exports["parquet"]["samples"]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"image_b": "edited"}, "no column 'edited' in 'edits.parquet'"),
        ({"path": "nowhere"}, "source.path: '"),
        ({"dataset": "x"}, "give exactly one of `path`"),
        (
            {"path": None, "dataset": "no-such-org/no-such-set"},
            "source.dataset: cannot load 'no-such-org/no-such-set'",
        ),
    ],
)
def test_bad_settings_fail_with_one_line(tmp_path: Path, source: dict, message: str) -> None:
    path = write_edits(tmp_path / "edits")
    recipe = _recipe({"path": str(path), **source})
    with pytest.raises(UsageError) as caught:
        imgdiff.run(recipe, tmp_path / "run")
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_recipe_paths_are_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    recipe = load_recipe(_recipe({"path": "edits/edits.parquet"}))
    assert json.dumps(recipe.to_dict()["source"]["path"]) == json.dumps(
        str(tmp_path / "edits" / "edits.parquet")
    )
