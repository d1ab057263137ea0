"""Random and mutated user inputs for the fuzz tests: recipes, pairs lines, captions, COCO files.

Each builder starts from a valid input and breaks it the ways files get broken: bytes flipped,
cut or inserted, values swapped for other JSON/YAML values, keys repeated, nesting deepened.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st
from PIL import Image

# Any JSON value, a few levels deep (NaN and huge numbers included: Python's json accepts them).
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["pixel", "paper", "a.png", "../a.png", "/etc/hostname", "", "0", "-1", ".nan"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def mutated_text(draw: st.DrawFn, text: str) -> bytes:
    """`text` as bytes with a few random cuts, insertions and byte flips."""
    data = bytearray(text.encode())
    for _ in range(draw(st.integers(0, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "cut", "insert", "dup"]))
        if action == "flip":
            data[at] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[at : at + draw(st.integers(1, 8))]
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=6))
        else:
            data[at:at] = data[at : at + draw(st.integers(1, 20))]
    return bytes(data)


def replace_somewhere(draw: st.DrawFn, value: Any) -> Any:
    """`value` (a JSON-like tree) with one node replaced by a random JSON value."""
    if isinstance(value, dict) and value and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(value)))
        return {**value, key: replace_somewhere(draw, value[key])}
    if isinstance(value, list) and value and draw(st.booleans()):
        i = draw(st.integers(0, len(value) - 1))
        return [*value[:i], replace_somewhere(draw, value[i]), *value[i + 1 :]]
    return draw(json_values)


def write_images(folder: Path, size: int = 32) -> None:
    """a.png, b.png (RGB, one square changed) and g16.png (16-bit greyscale) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    a = np.full((size, size, 3), 90, np.uint8)
    b = a.copy()
    b[8:20, 8:20] = (200, 40, 40)
    Image.fromarray(a).save(folder / "a.png")
    Image.fromarray(b).save(folder / "b.png")
    Image.fromarray(np.full((size, size), 40000, np.uint16)).save(folder / "g16.png")


def coco_files(folder: Path, size: int = 64) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two photos with a polygon and an RLE object each; (instances, captions) as dicts."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in (1, 2):
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    square = [[10.0, 10.0, 40.0, 10.0, 40.0, 40.0, 10.0, 40.0]]
    rle = {"size": [size, size], "counts": [size * 20, size * 10, size * size - size * 30]}
    images = [{"id": i, "file_name": f"{i}.png", "width": size, "height": size} for i in (1, 2)]
    annotations = [
        {"id": 1, "image_id": 1, "category_id": 1, "segmentation": square, "bbox": [10, 10, 30, 30]},
        {"id": 2, "image_id": 1, "category_id": 2, "segmentation": rle, "bbox": [20, 0, 10, 64]},
        {"id": 3, "image_id": 2, "category_id": 2, "segmentation": square, "bbox": [10, 10, 30, 30]},
    ]
    categories = [{"id": 1, "name": "cat", "supercategory": "animal"}, {"id": 2, "name": "dog"}]
    captions = [{"image_id": 1, "caption": "a cat and a dog"}, {"image_id": 2, "caption": "a dog"}]
    instances = {"images": images, "annotations": annotations, "categories": categories}
    return instances, {"annotations": captions}


def dump(value: Any) -> str:
    """JSON text of a fuzzed value; NaN and infinities as Python's json writes them."""
    return json.dumps(value, allow_nan=True)
