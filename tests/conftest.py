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
