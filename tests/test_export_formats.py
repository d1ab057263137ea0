"""Every format read back by the library its users load it with, difference and choice samples in
each: `datasets` (parquet and webdataset builders), the `webdataset` package, and the ShareGPT and
InternVL files checked against the field names their trainers read."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

import imgdiff
from conftest import tree_bytes
from export_data import DIFFERENCE_SAMPLES, choice_samples, make_run
from imgdiff.export import export_run
from imgdiff.export import parquet as parquet_module
from imgdiff.export import webdataset as webdataset_module
from imgdiff.export.samples import QUESTION
from imgdiff.render import side_by_side
from imgdiff.store import ImageLoader

FORMATS = ["llava", "sharegpt", "internvl", "parquet", "webdataset"]
SAMPLES = DIFFERENCE_SAMPLES + 2  # and two choice samples


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("formats"))


@pytest.fixture(scope="module")
def exported(run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    to = tmp_path_factory.mktemp("exported")
    summaries = export_run(run, FORMATS, to=to, extra_samples=choice_samples(run))
    assert {fmt: s["samples"] for fmt, s in summaries.items()} == dict.fromkeys(FORMATS, SAMPLES)
    return to


def _expected_picture(run: Path, sample_id: str) -> np.ndarray:
    record_id, tail = sample_id.rsplit("_", 1)
    record = next(r for r in imgdiff.load_records(run) if r.id == record_id)
    loader = ImageLoader(run)
    box = None if tail == "mcq" else record.regions[int(tail)].box
    return side_by_side(loader.load(record, "a"), loader.load(record, "b"), box)


def test_parquet_loads_with_datasets(run: Path, exported: Path) -> None:
    from datasets import load_dataset

    data = load_dataset("parquet", data_dir=str(exported / "parquet" / "data"))["train"]
    assert data.num_rows == SAMPLES
    assert data.features["image"].__class__.__name__ == "Image"
    assert data.features["pair_filter.similarity"].dtype == "float64"
    assert data.features["region.area"].dtype == "float64"
    assert sorted(data["type"]).count("choice") == 2
    rows = {row["id"]: row for row in data}
    for sample_id, row in rows.items():
        assert np.array_equal(np.asarray(row["image"].convert("RGB")), _expected_picture(run, sample_id))
    difference = rows[next(i for i in rows if i.endswith("_0"))]
    assert difference["question"] == QUESTION and difference["region.box"] == [4.0, 4.0, 20.0, 20.0]
    choice = rows[next(i for i in rows if i.endswith("_mcq"))]
    assert choice["answer"] in ("A", "B") and choice["choices"] == ["a cat", "a dog", "a cup"]
    assert choice["region.box"] is None and "A. a cat" in choice["question"]


def test_webdataset_reads_with_its_library_and_with_datasets(run: Path, exported: Path) -> None:
    import webdataset as wds
    from datasets import load_dataset

    shards = sorted(str(p) for p in (exported / "webdataset").glob("*.tar"))
    assert [Path(s).name for s in shards] == ["train-000000.tar"]
    seen = {}
    for picture, fields in wds.WebDataset(shards, shardshuffle=False).decode("rgb8").to_tuple("png", "json"):
        seen[fields["id"]] = fields
        assert np.array_equal(picture, _expected_picture(run, fields["id"]))
    assert len(seen) == SAMPLES and sum(f["type"] == "choice" for f in seen.values()) == 2
    assert all("pair_filter.similarity" in f for f in seen.values())
    data = load_dataset("webdataset", data_files={"train": shards})["train"]
    assert data.num_rows == SAMPLES
    first = data[0]
    assert first["png"].size == (64 * 2 + 20, 64) and first["json"]["id"] in seen


def test_sharegpt_has_the_fields_llama_factory_reads(exported: Path) -> None:
    folder = exported / "sharegpt"
    # LLaMA-Factory (src/llamafactory/data/parser.py, get_dataset_list) reads a dataset_info.json
    # entry's `file_name`, `formatting`, `columns` and `tags`; SharegptDatasetConverter.__call__
    # (src/llamafactory/data/converter.py) then reads example[columns.messages], each message's
    # [tags.role_tag] (user_tag on odd turns, assistant_tag on even ones) and [tags.content_tag], and
    # example[columns.images], resolved against media_dir (_find_medias); the multimodal plugin
    # (mm_plugin.py) wants one "<image>" placeholder per image.
    info = json.loads((folder / "dataset_info.json").read_text())
    entry = info["imgdiff"]
    assert entry["formatting"] == "sharegpt" and entry["file_name"] == "data.json"
    columns, tags = entry["columns"], entry["tags"]
    data = json.loads((folder / entry["file_name"]).read_text())
    assert len(data) == SAMPLES
    for example in data:
        messages = example[columns["messages"]]
        roles = [m[tags["role_tag"]] for m in messages]
        assert roles == [tags["user_tag"], tags["assistant_tag"]]
        text = "".join(m[tags["content_tag"]] for m in messages)
        images = example[columns["images"]]
        assert text.count("<image>") == len(images) == 1 and (folder / images[0]).is_file()
    assert sum(m["messages"][1]["content"] in "AB" for m in data) == 2


def test_internvl_has_the_fields_its_fine_tuning_reads(exported: Path) -> None:
    folder = exported / "internvl"
    # InternVL (internvl_chat/internvl/train/internvl_chat_finetune.py): build_datasets reads each
    # meta entry's `root`, `annotation`, `repeat_time` (required) and optionally `data_augment`,
    # `max_dynamic_patch`; LazySupervisedDataset reads the annotation jsonl line by line and each
    # item's `image` (joined to root) and `conversations` ({from: human|gpt, value}, "<image>" in
    # the first human turn).
    meta = json.loads((folder / "meta.json").read_text())
    entry = meta["imgdiff"]
    assert entry["repeat_time"] == 1 and entry["data_augment"] is False
    lines = (folder / entry["root"] / entry["annotation"]).read_text().splitlines()
    assert len(lines) == entry["length"] == SAMPLES
    for line in lines:
        item = json.loads(line)
        assert (folder / entry["root"] / item["image"]).is_file()
        turns = item["conversations"]
        assert [t["from"] for t in turns] == ["human", "gpt"] and turns[0]["value"].startswith("<image>\n")
        assert isinstance(item["id"], str)


def test_cards_say_how_to_load_and_show_an_example(exported: Path) -> None:
    for fmt in FORMATS:
        card = (exported / fmt / "README.md").read_text()
        assert "- samples: 16" in card and "## Licences" in card and "```yaml" in card
        assert "An example:" in card and "- `choice` samples: 2" in card and "multiple-choice" in card
        assert ("## How to load it" in card) == (fmt != "llava")  # llava's card keeps its bytes


def test_every_format_is_byte_deterministic_and_jpeg_works(run: Path, exported: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    export_run(run, FORMATS, to=again, options={"workers": 1}, extra_samples=choice_samples(run))
    assert tree_bytes(again, *FORMATS) == tree_bytes(exported, *FORMATS)
    export_run(
        run, ["webdataset"], to=tmp_path / "jpeg", options={"image_format": "jpeg", "jpeg_quality": 95}
    )
    names = sorted(p.name for p in (tmp_path / "jpeg" / "webdataset").glob("*.tar"))
    import tarfile

    with tarfile.open(tmp_path / "jpeg" / "webdataset" / names[0]) as tar:
        members = tar.getnames()
        picture = tar.extractfile(members[0]).read()
    assert members[0].endswith(".jpg") and Image.open(io.BytesIO(picture)).format == "JPEG"


def test_both_png_encoders_give_the_same_pixels_in_other_bytes(run: Path, tmp_path: Path) -> None:
    files = {}
    for encoder in ("fast", "pillow"):
        export_run(run, ["llava"], to=tmp_path / encoder, options={"png_encoder": encoder})
        folder = tmp_path / encoder / "llava"
        for entry in json.loads((folder / "data.json").read_text()):
            with Image.open(folder / entry["image"]) as image:
                assert np.array_equal(np.asarray(image), _expected_picture(run, entry["id"]))
            files.setdefault(encoder, []).append((folder / entry["image"]).read_bytes())
    assert len(files["fast"]) == DIFFERENCE_SAMPLES
    assert all(fast != pillow for fast, pillow in zip(files["fast"], files["pillow"], strict=True))


def test_large_exports_are_sharded_and_row_groups_capped(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a "MB" of 10 kB: ~3 samples (8.5 kB each) per row group, two row groups per file
    monkeypatch.setattr(parquet_module, "MB", 10_000)
    monkeypatch.setattr(webdataset_module, "MB", 10_000)
    options = {"shard_mb": 5, "row_group_mb": 2, "split": {"train": 0.5, "val": 0.5}}
    export_run(run, ["parquet", "webdataset"], to=tmp_path, options=options)
    files = sorted((tmp_path / "parquet" / "data").glob("*.parquet"))
    assert len(files) > 2 and {f.name.split("-")[0] for f in files} == {"train", "val"}
    groups = [
        pq.ParquetFile(f).metadata.row_group(i)
        for f in files
        for i in range(pq.ParquetFile(f).num_row_groups)
    ]
    assert len(groups) > len(files) and sum(g.num_rows for g in groups) == DIFFERENCE_SAMPLES
    assert all(g.num_rows <= 3 for g in groups)
    tars = sorted((tmp_path / "webdataset").glob("*.tar"))
    assert len(tars) > 2 and all(t.stat().st_size <= 5 * 10_000 for t in tars)
    from datasets import load_dataset

    data = load_dataset("parquet", data_dir=str(tmp_path / "parquet" / "data"))
    # `datasets` reads files named val-* as its `validation` split
    assert {name: d.num_rows for name, d in data.items()} == {"train": 10, "validation": 4}


def test_an_empty_split_has_no_file_and_the_rest_loads(run: Path, tmp_path: Path) -> None:
    from datasets import load_dataset

    summary = export_run(
        run, ["parquet", "webdataset"], to=tmp_path, options={"split": {"train": 0.9, "val": 0.1}}
    )
    assert summary["parquet"]["splits"] == {"train": DIFFERENCE_SAMPLES, "val": 0}  # no id falls in val
    assert [p.name for p in (tmp_path / "parquet" / "data").iterdir()] == ["train-00000.parquet"]
    assert [p.name for p in (tmp_path / "webdataset").glob("*.tar")] == ["train-000000.tar"]
    data = load_dataset("parquet", data_dir=str(tmp_path / "parquet" / "data"))
    assert {name: d.num_rows for name, d in data.items()} == {"train": DIFFERENCE_SAMPLES}


def test_exports_stream_records_and_refuse_a_file_out_of_order(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imgdiff.errors import UsageError
    from imgdiff.store import RunStore

    def whole_list(self: RunStore) -> None:
        raise AssertionError("an export must not hold every record at once")

    monkeypatch.setattr(RunStore, "read_records", whole_list)
    summary = export_run(run, ["parquet"], to=tmp_path / "streamed", options={"dedup": True})
    assert summary["parquet"]["samples"] == DIFFERENCE_SAMPLES - 3  # as test_export_select counts
    shuffled = tmp_path / "shuffled"
    shutil.copytree(run, shuffled, ignore=shutil.ignore_patterns("export"))
    lines = (shuffled / "records.jsonl").read_text().splitlines(keepends=True)
    (shuffled / "records.jsonl").write_text("".join(lines[1:] + lines[:1]))
    with pytest.raises(UsageError, match="out of canonical order"):
        export_run(shuffled, ["llava"], to=tmp_path / "refused")
    assert not (tmp_path / "refused" / "llava").exists()
