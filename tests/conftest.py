from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before anything imports transformers or diffusers
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

from pairs_data import write_pairs  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def pairs_file(tmp_path: Path) -> Path:
    """24 small pairs (replacements, distractors, unchanged) and their pairs.jsonl."""
    return write_pairs(tmp_path / "pairs", 24)


def pixel_recipe(pairs: Path, **run: object) -> dict:
    """The smallest real pipeline: pairs -> pixel pair filter."""
    return {
        "seed": 0,
        "batch_size": 4,
        **run,
        "source": {"type": "pairs", "path": str(pairs)},
        "stages": [{"pair_filter": {"method": "pixel"}}],
    }


def tree_bytes(root: Path, *parts: str) -> dict[str, bytes]:
    """{relative path: bytes} of the files under root/part for each part."""
    out = {}
    for part in parts:
        base = root / part
        if base.is_file():
            out[part] = base.read_bytes()
        for path in sorted(base.rglob("*")) if base.is_dir() else []:
            if path.is_file():
                out[str(path.relative_to(root))] = path.read_bytes()
    return out


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """`tiny_models("clip")` -> the model entry (dict) of a tiny random-weight checkpoint, built once
    per test session by `imgdiff models make-tiny`'s own builders and loaded by the normal path."""
    from imgdiff.tiny import build_tiny

    root = tmp_path_factory.mktemp("tiny-models")
    built: dict[str, dict[str, Any]] = {}

    def get(name: str) -> dict[str, Any]:
        if name not in built:
            built[name] = build_tiny(name, root)
        return dict(built[name])

    return get


@pytest.fixture(scope="session")
def tiny_img_diff(tmp_path_factory: pytest.TempPathFactory, tiny_models: Any) -> Any:
    """The tiny `img-diff` recipe (every model stage) run once by the streaming local engine: the
    reference that other engines' runs of it are compared with. Returns `run(out, **options)`, which
    runs it into `out` the same way (`options`: `_run`'s engine, chunk_size, gpu_memory_gb), with
    `run.reference` the reference's directory. The LLM and the VL model are one scripted server for
    the session. Runs use one torch thread: Ray gives a worker one
    thread per CPU it asked for, and model floats depend on the thread count."""
    import json

    import torch

    from openai_server import ChatServer
    from test_recipe_img_diff import CAPTIONS, scripted
    from test_recipe_img_diff import _run as run_img_diff

    # Random weights: without these bands the pair filter rejects every pair and no later stage runs.
    PASS_ALL = {
        "pair_filter.similarity_gt": "null",
        "pair_filter.similarity_lt": "null",
        "regions.crop_similarity_lt": "null",
        "regions.match_rule": "none",
    }
    root = tmp_path_factory.mktemp("tiny-img-diff")
    captions = root / "captions.json"
    captions.write_text(json.dumps([{"image_id": i, "caption": c} for i, (c, _, _) in enumerate(CAPTIONS)]))

    with ChatServer(scripted) as server:  # one server: its address is part of the recipe's fingerprint

        def run(out: Path, **options: Any) -> int:
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                return run_img_diff(out, captions, server, tiny_models, overrides=PASS_ALL, **options)
            finally:
                torch.set_num_threads(threads)

        run.reference = root / "streaming"  # type: ignore[attr-defined]
        assert run(run.reference) == 0  # type: ignore[attr-defined]
        yield run
