"""`imgdiff models make-tiny | list | fetch`.

make-tiny's checkpoints load through the normal pool; `list` tells present from missing; `fetch`
downloads from a fake hub on 127.0.0.1 (`HF_ENDPOINT`, `IMGDIFF_ASSETS_URL`), writes a recipe that
runs offline, fetches nothing the second time, and refuses with one line when offline. huggingface_hub
reads its endpoint and offline switch when imported, so the online fetches run in a subprocess with
an environment of their own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from fake_hub import FakeHub, write_hub_cache
from imgdiff.cli import main
from imgdiff.models import ModelEntry, ModelPool
from imgdiff.recipe import load_recipe

HUB_ID = "openai/clip-vit-base-patch32"
SERVER = {"role": "text_generator", "backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m"}


def _recipe(tmp_path: Path, models: dict[str, Any]) -> Path:
    path = tmp_path / "recipe.yaml"
    recipe = {
        "seed": 3,
        "source": {"type": "synthetic", "count": 4},
        "models": models,
        "stages": [{"pair_filter": {"method": "pixel"}}],
    }
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


@pytest.fixture
def empty_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_make_tiny_writes_entries_that_load_through_the_pool(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tiny"
    assert main(["models", "make-tiny", str(out), "--only", "clip, blip"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[:3] == [
        f"building 2 tiny model(s) in {out}",
        f"  clip: {out / 'clip'}",
        f"  blip: {out / 'blip'}",
    ]
    assert printed[-1].startswith(f"wrote {out / 'recipe.yaml'}") and "imgdiff run" in printed[-1]

    models = yaml.safe_load((out / "models.yaml").read_text())["models"]
    recipe = load_recipe(out / "recipe.yaml")  # a recipe that loads, on the tiny checkpoints
    assert {entry.path for entry in recipe.models.values()} == {entry["path"] for entry in models.values()}
    assert models == {
        "clip": {"role": "embedder", "path": str(out / "clip")},
        "blip": {"role": "matcher", "path": str(out / "blip")},
    }
    pool = ModelPool({name: ModelEntry(**entry) for name, entry in models.items()})
    texts = pool.get("clip").embed_texts(["a red car", "a dog"])
    assert texts.shape[0] == 2 and np.allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-4)
    image = np.zeros((40, 50, 3), np.uint8)
    probability, cosine = pool.get("blip").match([image], ["a cat"])
    assert probability.shape == cosine.shape == (1,) and 0.0 <= probability[0] <= 1.0


def test_make_tiny_unknown_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "make-tiny", str(tmp_path / "t"), "--only", "clip,clipp"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown model 'clipp'" in err and "did you mean 'clip'" in err and "\n" not in err
    assert not (tmp_path / "t").exists()  # checked before building anything


def test_list_tells_present_from_missing(
    tmp_path: Path,
    tiny_models: Any,
    empty_hub_cache: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    snapshot = write_hub_cache(empty_hub_cache, HUB_ID, Path(tiny_models("clip")["path"]))
    monkeypatch.chdir(tmp_path)  # FastSAM-x.pt is looked for here
    recipe = _recipe(
        tmp_path,
        {
            "clip": {"role": "embedder", "id": HUB_ID},
            "blip": {"role": "matcher", "id": "Salesforce/blip-itm-large-coco"},
            "local": tiny_models("blip"),
            "fastsam": {"role": "segmenter", "backend": "ultralytics", "path": "FastSAM-x.pt"},
            "llm": SERVER,
        },
    )
    assert main(["models", "list", str(recipe), "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert {name: row["present"] for name, row in rows.items()} == {
        "clip": True,
        "blip": False,
        "local": True,
        "fastsam": False,
        "llm": None,
    }
    assert rows["clip"]["where"] == str(snapshot)
    assert rows["blip"]["where"] == f"not in the Hugging Face cache {empty_hub_cache}"
    assert rows["fastsam"]["where"] == str(tmp_path / "FastSAM-x.pt")
    assert rows["local"]["points_to"] == f"path {tiny_models('blip')['path']}"

    assert main(["models", "list", str(recipe)]) == 0
    table = capsys.readouterr().out.strip().splitlines()
    assert table[0].split() == ["name", "role", "backend", "points", "to", "present", "where"]
    assert table[-1].startswith("missing: blip, fastsam; ") and "imgdiff models fetch" in table[-1]


def _fetch(recipe: Path, to: Path, hub: FakeHub, home: Path) -> subprocess.CompletedProcess[str]:
    """`imgdiff models fetch` in a fresh interpreter, online against the fake hub."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(
        HF_ENDPOINT=hub.url,
        HF_HOME=str(home),  # its own empty cache
        HF_HUB_DISABLE_TELEMETRY="1",
        IMGDIFF_ASSETS_URL=f"{hub.url}/assets",
    )
    command = [sys.executable, "-m", "imgdiff", "models", "fetch", str(recipe), "--to", str(to)]
    return subprocess.run(command, env=env, cwd=recipe.parent, capture_output=True, text=True, timeout=120)


def test_fetch_downloads_rewrites_the_recipe_and_fetches_nothing_twice(
    tmp_path: Path, tiny_models: Any
) -> None:
    repo = Path(tiny_models("clip")["path"])
    asset = tmp_path / "served" / "FastSAM-x.pt"
    asset.parent.mkdir()
    asset.write_bytes(np.random.default_rng(0).bytes(200_000))
    recipe = _recipe(
        tmp_path,
        {
            "clip": {"role": "embedder", "id": HUB_ID, "dtype": "float16"},
            "fastsam": {"role": "segmenter", "backend": "ultralytics", "path": "FastSAM-x.pt", "imgsz": 64},
            "llm": SERVER,
        },
    )
    to = tmp_path / "models"
    with FakeHub({HUB_ID: repo}, {"FastSAM-x.pt": asset}) as hub:
        done = _fetch(recipe, to, hub, tmp_path / "home")
        assert done.returncode == 0, done.stderr
        repo_files = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file())
        resolved = sorted(
            p.rpartition("/resolve/")[2].partition("/")[2] for p in hub.file_downloads() if "/resolve/" in p
        )
        assert resolved == repo_files  # each repo file once
        assert "/assets/FastSAM-x.pt" in hub.file_downloads()
        for name in repo_files:
            assert (to / "clip" / name).read_bytes() == (repo / name).read_bytes()
        assert (to / "FastSAM-x.pt").read_bytes() == asset.read_bytes()
        assert not list(to.glob("*.part"))
        lines = done.stdout.strip().splitlines()
        assert lines[0] == f"clip: downloading hub id {HUB_ID} -> {to / 'clip'}"
        assert lines[1].startswith("fastsam: downloading FastSAM-x.pt from ")
        assert lines[2] == "llm: a server at http://127.0.0.1:9/v1, nothing to fetch"
        assert lines[-1].startswith(f"wrote {to / 'recipe.yaml'}")

        hub.requests.clear()
        again = _fetch(recipe, to, hub, tmp_path / "home")
        assert again.returncode == 0, again.stderr
        assert hub.requests == []  # not even asked
        assert [line.split(": ", 1)[1] for line in again.stdout.splitlines()[:2]] == [
            f"already fetched -> {to / 'clip'}",
            f"already fetched -> {to / 'FastSAM-x.pt'}",
        ]

    fetched = yaml.safe_load((to / "recipe.yaml").read_text())
    original = yaml.safe_load(recipe.read_text())
    assert fetched["models"] == {
        "clip": {"role": "embedder", "path": str(to / "clip"), "dtype": "float16"},
        "fastsam": {
            "role": "segmenter",
            "backend": "ultralytics",
            "path": str(to / "FastSAM-x.pt"),
            "imgsz": 64,
        },
        "llm": SERVER,
    }
    assert {k: v for k, v in fetched.items() if k != "models"} == {
        k: v for k, v in original.items() if k != "models"
    }
    # The rewritten recipe runs offline here (conftest sets HF_HUB_OFFLINE=1): the fetched CLIP loads.
    models = load_recipe(to / "recipe.yaml").models
    assert ModelPool(models).get("clip").embed_images([np.zeros((32, 32, 3), np.uint8)]).shape[0] == 1


def test_fetch_failures_are_one_line_and_leave_no_partial_file(tmp_path: Path, tiny_models: Any) -> None:
    with FakeHub({HUB_ID: Path(tiny_models("clip")["path"])}) as hub:
        unknown = _recipe(tmp_path, {"clip": {"role": "embedder", "id": "nobody/nothing"}})
        done = _fetch(unknown, tmp_path / "a", hub, tmp_path / "home")
        assert done.returncode == 2
        last = done.stderr.strip().splitlines()[-1]
        assert last == (
            f"imgdiff: error: model 'clip': could not download hub id nobody/nothing from {hub.url}: "
            "no such repository, or it is private (log in with `hf auth login`)"
        )

        no_asset = _recipe(
            tmp_path, {"sam": {"role": "segmenter", "backend": "ultralytics", "path": "FastSAM-s.pt"}}
        )
        done = _fetch(no_asset, tmp_path / "b", hub, tmp_path / "home")
        assert done.returncode == 2
        url = f"{hub.url}/assets/FastSAM-s.pt"
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith(f"imgdiff: error: model 'sam': could not download {url} (Client error '404")
        assert list((tmp_path / "b").iterdir()) == []
        assert not (tmp_path / "a" / "recipe.yaml").exists()


def test_fetch_offline_names_what_is_missing_and_fetches_nothing(
    tmp_path: Path, empty_hub_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = _recipe(
        tmp_path,
        {
            "clip": {"role": "embedder", "id": HUB_ID},
            "fastsam": {
                "role": "segmenter",
                "backend": "ultralytics",
                "path": str(tmp_path / "FastSAM-x.pt"),
            },
            "llm": SERVER,
        },
    )
    assert main(["models", "fetch", str(recipe), "--to", str(tmp_path / "models")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("imgdiff: error: models fetch: nothing fetched; missing: ")
    assert f"clip (hub id {HUB_ID}), fastsam (FastSAM-x.pt from " in err
    assert "need a download and HF_HUB_OFFLINE is set" in err and "llm" not in err
    assert not (tmp_path / "models").exists()


def test_fetch_offline_copies_what_the_hub_cache_holds(
    tmp_path: Path, tiny_models: Any, empty_hub_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot = write_hub_cache(empty_hub_cache, HUB_ID, Path(tiny_models("clip")["path"]))
    recipe = _recipe(tmp_path, {"clip": {"role": "embedder", "id": HUB_ID}})
    to = tmp_path / "models"
    assert main(["models", "fetch", str(recipe), "--to", str(to)]) == 0
    assert capsys.readouterr().out.startswith(f"clip: copying hub id {HUB_ID} from the Hugging Face cache")
    for path in snapshot.iterdir():
        assert (to / "clip" / path.name).read_bytes() == path.read_bytes()
    assert yaml.safe_load((to / "recipe.yaml").read_text())["models"]["clip"] == {
        "role": "embedder",
        "path": str(to / "clip"),
    }


def test_fetch_refuses_a_folder_holding_another_model(
    tmp_path: Path, tiny_models: Any, empty_hub_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_hub_cache(empty_hub_cache, HUB_ID, Path(tiny_models("clip")["path"]))
    to = tmp_path / "models"
    assert (
        main(
            [
                "models",
                "fetch",
                str(_recipe(tmp_path, {"clip": {"role": "embedder", "id": HUB_ID}})),
                "--to",
                str(to),
            ]
        )
        == 0
    )
    other = _recipe(tmp_path, {"clip": {"role": "embedder", "id": "openai/clip-vit-large-patch14"}})
    capsys.readouterr()
    assert main(["models", "fetch", str(other), "--to", str(to)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{to / 'clip'} holds hub id {HUB_ID}" in err and "remove it or fetch into another folder" in err
