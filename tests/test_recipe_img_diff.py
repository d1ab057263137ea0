"""The built-in `img-diff` recipe end to end through the CLI, on tiny models: captions -> LLM edits
(a real local OpenAI-compatible server with scripted answers) -> Prompt-to-Prompt pairs on a tiny
SDXL -> CLIP pair filter -> semantic regions (tiny CLIP, BLIP, FastSAM) -> `describe`/`vlm`
(scripted region and difference captions from the same server, the tiny CLIP and BLIP) -> LLaVA
export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from imgdiff.cli import main
from imgdiff.record import Record
from openai_server import ChatServer, _images_of, _last_user_text

# caption, old object, new object: the edit the scripted LLM answers for that caption
CAPTIONS = [
    ("a cat sitting on a bench", "cat", "dog"),
    ("a man standing next to a car", "car", "bus"),
    ("a red apple on a plate", "apple", "banana"),
    ("a small dog in front of a tree", "dog", "cat"),
]
# What the filters may reject a random-weight pair for (their threshold settings' codes); anything
# else would be a crash or a bug.
FILTER_REASONS = {"similarity_gt", "similarity_lt", "size_mismatch", "no_regions", "no_objects"}


def scripted_edit(body: dict[str, Any]) -> str:
    """The LLM's answer: the one-object edit of whichever test caption the prompt asks about."""
    text = "\n".join(m["content"] for m in body["messages"] if isinstance(m.get("content"), str))
    asked = [c for c in CAPTIONS if c[0] in text]
    assert len(asked) == 1, f"the prompt names {len(asked)} test captions"
    caption, old, new = asked[0]
    return json.dumps({"edited_caption": caption.replace(old, new), "old_object": old, "new_object": new})


def scripted(body: dict[str, Any]) -> str:
    """The LLM's edits, and for vision prompts the VL model's captions: a region caption names the
    image's mean colour (so the two sides differ), a difference caption echoes its hints."""
    user = [m for m in body["messages"] if m["role"] == "user"][-1]
    if isinstance(user["content"], str):
        return scripted_edit(body)
    text, (image,) = _last_user_text(body["messages"]), _images_of(user["content"])
    if text.startswith("Please provide a short description"):
        red, green, blue = (int(v) for v in image.reshape(-1, 3).mean(axis=0))
        return f"a thing of colour {red} {green} {blue}"
    return "The boxes differ: " + text.split("Hints: ", 1)[1].split(" What is", 1)[0]


def _run(
    out: Path,
    captions: Path,
    server: ChatServer,
    tiny_models: Any,
    engine: str | None = None,
    chunk_size: int = 0,
    gpu_memory_gb: float | None = None,
    overrides: dict[str, object] | None = None,
) -> int:
    """The recipe through the CLI; `engine`: a Ray cluster's address to run it there; `chunk_size`:
    the local engine with models per group; `gpu_memory_gb`: the GPU memory the local engine fits;
    `overrides`: more `--set`s."""
    sets = {
        "source.path": captions,
        "models.qwen.backend": "openai",
        "models.qwen.id": "null",
        "models.qwen.base_url": server.url,
        "models.qwen.model": "scripted",
        "models.sdxl.id": "null",
        "models.sdxl.path": tiny_models("sdxl")["path"],
        **{f"models.{name}.id": "null" for name in ("clip", "blip")},
        **{f"models.{name}.path": tiny_models(name)["path"] for name in ("clip", "blip", "fastsam")},
        "models.fastsam.imgsz": 64,
        "models.llava.backend": "openai",
        "models.llava.id": "null",
        "models.llava.dtype": "float32",
        "models.llava.base_url": server.url,
        "models.llava.model": "scripted",
        "generate.size": 64,
        "generate.steps": 2,
        # the tiny random BLIP's cosines say nothing: only the CLIP rule and the box rules decide here
        "describe.blip_cosine_gt": "null",
        **(overrides or {}),
    }
    args = [item for key, value in sets.items() for item in ("--set", f"{key}={value}")]
    ray = ["--engine", "ray", "--address", engine] if engine else []
    ray += ["--chunk-size", str(chunk_size)] if chunk_size else []
    ray += ["--gpu-memory-gb", str(gpu_memory_gb)] if gpu_memory_gb is not None else []
    return main(["run", "img-diff", "--out", str(out), "--no-progress", *args, *ray])


def test_img_diff_recipe_runs_end_to_end(tmp_path: Path, tiny_models: Any) -> None:
    captions = tmp_path / "captions.json"
    captions.write_text(json.dumps([{"image_id": i, "caption": c} for i, (c, _, _) in enumerate(CAPTIONS)]))
    out = tmp_path / "run"
    with ChatServer(scripted) as server:
        assert _run(out, captions, server, tiny_models) == 0
        assert len(server.requests) >= len(CAPTIONS)

    records = [
        Record.from_dict(json.loads(line)) for line in (out / "records.jsonl").read_text().splitlines()
    ]
    assert len(records) == len(CAPTIONS)
    for record, (caption, old, new) in zip(records, CAPTIONS, strict=True):
        assert record.caption_a == caption and record.caption_b == caption.replace(old, new)
        assert (record.edit.old, record.edit.new) == (old, new)
        assert record.rejected_by not in ("source", "edit", "generate"), record.reason
        assert record.generation["seed"] == record.seed and record.generation["height"] == 64
        for rel in (record.images["a"], record.images["b"], record.aux["prior"]):
            assert (out / rel).is_file()
    # A tiny random SDXL barely changes the edited image, so the pixel filter usually stops every
    # pair before `describe`; describe/vlm through the engine is tests/test_describe_vlm_run.py.
    for record in records:
        for region in record.regions if record.kept else []:
            assert region.rejected_by is not None or region.difference.startswith("The boxes differ: ")

    stats = json.loads((out / "stats.json").read_text())
    funnel = {s["stage"]: s for s in stats["stages"]}
    assert list(funnel) == ["source", "edit", "generate", "pair_filter", "regions", "describe"]
    assert funnel["generate"]["in"] == funnel["generate"]["kept"] == len(CAPTIONS)
    assert stats["complete"] and stats["records"] == len(CAPTIONS)
    for stage in ("pair_filter", "regions", "describe"):
        assert set(funnel[stage]["rejected"]) <= FILTER_REASONS, funnel[stage]["rejected"]
    assert stats["kept"] == funnel["describe"]["kept"]
    card = (out / "export" / "llava" / "README.md").read_text()
    assert "- source `captions`: the captions file's licence" in card
    assert "- model `sdxl` (" in card and "- model `qwen` (" in card  # licences travel with the data


def test_img_diff_is_a_builtin_recipe(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recipes", "list"]) == 0
    assert "img-diff" in capsys.readouterr().out
    assert main(["recipes", "show", "img-diff"]) == 0
    shown = capsys.readouterr().out
    assert "type: captions" in shown and "method: p2p" in shown and "pairs_per_call: 4" in shown
    assert "method: vlm" in shown and "llava-hf/llava-v1.6-vicuna-7b-hf" in shown


def test_img_diff_without_a_captions_file_says_which_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no captions_train2017.json here
    assert main(["run", "img-diff", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "source.path" in err and "captions_train2017.json" in err
