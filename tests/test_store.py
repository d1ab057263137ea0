from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from imgdiff.errors import UsageError
from imgdiff.record import Record
from imgdiff.store import RunStore, encode_npz


def test_artifacts_land_at_id_derived_paths(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run")
    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    prior = np.ones((2, 3, 3), dtype=np.float16)
    masks = {"truth_a": np.eye(3, dtype=bool)}
    record = Record(
        id="abcdef012345", source_index=0, seed=0, artifacts={"a": rgb, "prior": prior, "masks": masks}
    )
    store.write_artifacts(record)
    assert record.images == {"a": "images/ab/abcdef012345_a.png"}
    assert record.aux == {"prior": "aux/ab/abcdef012345_prior.npy", "masks": "aux/ab/abcdef012345_masks.npz"}
    assert np.array_equal(store.images.load(Record.from_dict(record.to_dict()), "a"), rgb)  # lossless
    assert np.array_equal(np.load(tmp_path / "run" / record.aux["prior"]), prior)
    assert np.array_equal(np.load(tmp_path / "run" / record.aux["masks"])["truth_a"], masks["truth_a"])
    assert not list((tmp_path / "run" / ".tmp").iterdir())  # temporaries renamed into place


def test_webp_is_lossless_too(tmp_path: Path) -> None:
    store = RunStore(tmp_path, image_format="webp")
    rgb = np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    record = Record(id="ffeedd001122", source_index=0, seed=0, artifacts={"b": rgb})
    store.write_artifacts(record)
    assert record.images["b"].endswith(".webp")
    assert np.array_equal(store.images.load(Record.from_dict(record.to_dict()), "b"), rgb)


def test_npz_bytes_do_not_depend_on_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    arrays = {"b": np.zeros(3), "a": np.ones((2, 2), dtype=bool)}
    first = encode_npz(arrays)
    import time

    monkeypatch.setattr(time, "time", lambda: 2e9)
    assert encode_npz(arrays) == first
    assert set(np.load(io.BytesIO(first)).files) == {"a", "b"}


def test_parts_keep_the_latest_line_and_skip_a_torn_one(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    writer = store.part_writer("s", 1)
    writer.append([{"in": "x", "fp": "1", "out": []}, {"in": "y", "fp": "1", "out": []}])
    writer.append([{"in": "x", "fp": "2", "out": []}])
    writer.close()
    with (tmp_path / "stages" / "s" / "part-00001.jsonl").open("a") as handle:
        handle.write('{"in": "z", "fp"')
    parts = store.read_parts("s")
    assert parts["x"]["fp"] == "2" and parts["y"]["fp"] == "1" and "z" not in parts


def test_create_refuses_files_and_foreign_folders(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        RunStore(tmp_path / "f" / "run").create()
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "notes.txt").write_text("x")
    with pytest.raises(UsageError, match="not an imgdiff run"):
        RunStore(tmp_path / "d").create()


def test_one_process_per_run_directory(tmp_path: Path, pairs_file: Path) -> None:
    import fcntl

    import imgdiff
    from conftest import pixel_recipe

    imgdiff.run(pixel_recipe(pairs_file), tmp_path / "run")
    with (tmp_path / "run" / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(UsageError, match="another imgdiff process"):
            imgdiff.run(pixel_recipe(pairs_file), tmp_path / "run")


def test_leftover_temporaries_are_swept_and_corrupt_run_json_is_reported(
    tmp_path: Path, pairs_file: Path
) -> None:
    import imgdiff
    from conftest import pixel_recipe

    run_dir = tmp_path / "run"
    imgdiff.run(pixel_recipe(pairs_file), run_dir)
    (run_dir / ".tmp").mkdir(exist_ok=True)
    (run_dir / ".tmp" / ".x_a.png.tmp-1").write_bytes(b"half an image")
    imgdiff.run(pixel_recipe(pairs_file), run_dir)
    assert not (run_dir / ".tmp" / ".x_a.png.tmp-1").exists()
    (run_dir / "run.json").write_text("{")
    with pytest.raises(UsageError, match="run.json is corrupt"):
        imgdiff.run(pixel_recipe(pairs_file), run_dir)
