"""`describe`/`vlm` through the engine: pairs -> pixel filter -> pixel regions -> describe vlm (a
scripted VL server, the tiny CLIP and BLIP) -> LLaVA export; then `imgdiff rethreshold` on a describe
threshold that admits boxes whose difference captions were never asked for, and the same `run`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import imgdiff
from imgdiff.cli import main
from imgdiff.record import Record
from imgdiff.stages.describe.vlm import VlmDescribe
from imgdiff.store import RunStore
from openai_server import ChatServer, _images_of, _last_user_text
from pairs_data import write_pairs


def scripted(body: dict[str, Any]) -> str:
    """Region captions name the image's mean colour (the two sides differ); differences echo hints."""
    user = [m for m in body["messages"] if m["role"] == "user"][-1]
    text, (image,) = _last_user_text(body["messages"]), _images_of(user["content"])
    if text.startswith("Please provide a short description"):
        red, green, blue = (int(v) for v in image.reshape(-1, 3).mean(axis=0))
        return f"a thing of colour {red} {green} {blue}"
    return "The boxes differ: " + text.split("Hints: ", 1)[1].split(" What is", 1)[0]


@pytest.fixture(scope="module")
def server() -> Iterator[ChatServer]:
    with ChatServer(scripted) as running:
        yield running


def recipe(pairs: Path, server: ChatServer, tiny_models: Any) -> dict[str, Any]:
    return {
        "seed": 0,
        "batch_size": 4,
        "source": {"type": "pairs", "path": str(pairs)},
        "models": {
            "llava": {
                "role": "vl_generator",
                "backend": "openai",
                "base_url": server.url,
                "model": "scripted",
            },
            "clip": tiny_models("clip"),
            "blip": tiny_models("blip"),
        },
        "stages": [
            {"pair_filter": {"method": "pixel"}},
            {"regions": {"method": "pixel"}},
            # CLIP rejects every box at first, so no difference caption is asked for; the tiny
            # random BLIP's cosines say nothing, so its rule is off
            {
                "describe": {
                    "method": "vlm",
                    **{"vl": "llava", "embedder": "clip", "matcher": "blip"},
                    **{"clip_similarity_lt": -1.0, "blip_cosine_gt": None},
                }
            },
        ],
        "export": ["llava"],
    }


def asked(server: ChatServer, kind: str) -> int:
    marker = "Please provide a short description" if kind == "region" else "What is the difference"
    return sum(marker in _last_user_text(body["messages"]) for body in server.requests)


@pytest.fixture(scope="module")
def rethresholded(tmp_path_factory: pytest.TempPathFactory, server: ChatServer, tiny_models: Any) -> Any:
    """A run whose boxes CLIP rejected, then rethresholded so that they pass: (recipe, run, ids of
    the pairs describe rejected)."""
    tmp_path = tmp_path_factory.mktemp("describe-run")
    spec = recipe(write_pairs(tmp_path / "pairs", 6), server, tiny_models)
    out = tmp_path / "run"
    imgdiff.run(spec, out)
    described = [r for r in imgdiff.load_records(out) if r.rejected_by == "describe"]
    assert described and all(r.reason.startswith("no_regions") for r in described)
    captioned = sum(bool(region.captions) for r in described for region in r.regions)
    assert captioned and asked(server, "region") == 2 * captioned and asked(server, "difference") == 0
    for record in described:
        assert {region.reason.split(":")[0] for region in record.regions} <= {
            "clip_similarity_lt",
            "area_min",
        }
    # Looser: the boxes pass CLIP now, but their difference captions were never asked for.
    assert main(["rethreshold", str(out), "--set", "describe.clip_similarity_lt=0.9999"]) == 0
    server.requests.clear()
    return spec, out, {r.id for r in described}


def test_rethreshold_leaves_stored_outputs_that_the_stage_calls_incomplete(rethresholded: Any) -> None:
    spec, out, ids = rethresholded
    stage = VlmDescribe(
        VlmDescribe.resolve_settings({**_describe(spec), "clip_similarity_lt": 0.9999}, "test")
    )
    stored = {
        line["in"]: Record.from_dict(line["out"][0]) for line in RunStore(out).read_parts("describe").values()
    }
    assert all(stage.incomplete(stored[i]) for i in ids)  # what the engine hands back to the stage
    stats = json.loads((out / "stats.json").read_text())
    assert stats["pending_by_stage"] == {"describe": len(ids)}  # rethreshold computes nothing: they wait


def _describe(spec: dict[str, Any]) -> dict[str, Any]:
    (settings,) = [stage["describe"] for stage in spec["stages"] if "describe" in stage]
    return {k: v for k, v in settings.items() if k != "method"}


def test_the_same_run_then_computes_only_the_admitted_work(rethresholded: Any, server: ChatServer) -> None:
    spec, out, ids = rethresholded
    imgdiff.run(spec, out)
    assert asked(server, "region") == 0 and asked(server, "difference") > 0
    assert all(r.kept for r in imgdiff.load_records(out) if r.id in ids)
    stats = json.loads((out / "stats.json").read_text())
    assert {s["stage"]: s for s in stats["stages"]}["describe"]["computed"] == len(ids)
