"""The benchmarks `imgdiff predict` runs a model over, each read from a local folder.

A benchmark gives items in a fixed order: an id (the id its scorer uses), the images, the prompt
text and fields kept with the answer. Images are read only when a batch is asked, never all at
once.

| benchmark | folder | items | ids |
|---|---|---|---|
| `mmvp` | `Questions.csv`, `MMVP Images/<Index>.jpg` | one question, one image | Index |
| `spot-the-diff` | see below | one pair | img_id |
| `image-edit-request` | see below | one pair | uid |
| `run:DIR` | an imgdiff run | one kept pair (images a, b) | record id |

Spot-the-Diff: `annotations/<split>.json` (or `<split>.json`) listing `{img_id, sentences}`, images
`resized_images/<img_id>.png` and `<img_id>_2.png` (or in the folder itself). Image-Edit-Request:
`<split>.json` (or `data/<split>.json`) listing `{uid, img0, img1, sents}`, images under `images/`
(or the folder) by the names `img0` and `img1`. Splits are named as the releases name them.

The prompts (`PROMPTS`) go into the predictions file's header, so every answer says what was asked.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imgdiff.errors import UsageError

TASKS = ("locate", "describe")
BENCHMARKS = ("mmvp", "spot-the-diff", "image-edit-request", "run:DIR")

PROMPTS: dict[str, str] = {
    # lmms-eval's MMVP prompt: the question, its options, then the instruction.
    "mmvp": "{question}\n{options}\nAnswer with the option's letter from the given choices directly.",
    "spot-the-diff": (
        "The two images are frames of the same scene. Describe what is different in the second "
        "image, in one or two sentences."
    ),
    "image-edit-request": (
        "The second image is the first image after an edit. Write the edit request that turns the "
        "first image into the second, in one sentence."
    ),
    "locate": (
        "The two images are the same scene except for one object that was changed or removed. "
        "Give the bounding box of that object in the first image as [x1, y1, x2, y2], with "
        "coordinates between 0 and 1 relative to the image width and height. Answer with the box only."
    ),
    "describe": (
        "The two images are the same scene except for one object that was changed or removed. "
        "In one sentence, say which object in the first image differs and what the second image "
        "shows there instead, or that it is gone."
    ),
}


@dataclass
class Item:
    id: str
    prompt: str
    load_images: Callable[[], list[np.ndarray]]
    fields: dict[str, Any] = field(default_factory=dict)  # written beside the answer


@dataclass
class Benchmark:
    name: str  # e.g. "mmvp", "run"
    task: str  # "answer", "describe", "locate"
    source: dict[str, Any]  # what identifies the data (goes into the header)
    prompt_template: str
    items: list[Item]


def open_benchmark(spec: str, data: str | None, split: str, task: str | None) -> Benchmark:
    """A public benchmark's items (`run:DIR` is eval/run_items.py's)."""
    if spec not in ("mmvp", "spot-the-diff", "image-edit-request"):
        raise UsageError(f"unknown benchmark '{spec}' (valid: {', '.join(BENCHMARKS)})")
    if task is not None:
        raise UsageError(f"--task is for run:DIR benchmarks; {spec} has its own task")
    if data is None:
        raise UsageError(f"predict {spec} needs --data FOLDER (the benchmark's files, local)")
    folder = Path(data)
    if not folder.is_dir():
        raise UsageError(f"--data '{folder}' is not a folder")
    readers = {"mmvp": _mmvp, "spot-the-diff": _spot_the_diff, "image-edit-request": _image_edit_request}
    return readers[spec](folder.resolve(), split)


def image_loader(*paths: Path) -> Callable[[], list[np.ndarray]]:
    def load() -> list[np.ndarray]:
        from PIL import Image, UnidentifiedImageError

        images = []
        for path in paths:
            try:
                with Image.open(path) as image:
                    images.append(np.asarray(image.convert("RGB")))
            except (OSError, UnidentifiedImageError) as exc:
                raise UsageError(f"cannot read image '{path}': {exc}") from None
        return images

    return load


def _mmvp(folder: Path, split: str) -> Benchmark:
    from imgdiff.eval.mmvp import read_questions

    images = folder / "MMVP Images"
    items = []
    for q in read_questions(folder, corrected=False):  # prompts never show the key
        options = " ".join(f"({letter}) {text}" for letter, text in q.options.items())
        prompt = PROMPTS["mmvp"].format(question=q.question, options=options)
        items.append(Item(str(q.index), prompt, image_loader(_find(images, str(q.index)))))
    return Benchmark("mmvp", "answer", {"benchmark": "mmvp", "data": str(folder)}, PROMPTS["mmvp"], items)


def _spot_the_diff(folder: Path, split: str) -> Benchmark:
    annotations = _first_file(folder, [f"annotations/{split}.json", f"{split}.json"])
    images = folder / "resized_images" if (folder / "resized_images").is_dir() else folder
    items = []
    for entry in _json_list(annotations, ("img_id",)):
        pair_id = str(entry["img_id"])
        load = image_loader(_find(images, pair_id), _find(images, f"{pair_id}_2"))
        items.append(Item(pair_id, PROMPTS["spot-the-diff"], load))
    source = {"benchmark": "spot-the-diff", "data": str(folder), "split": split}
    return Benchmark("spot-the-diff", "describe", source, PROMPTS["spot-the-diff"], items)


def _image_edit_request(folder: Path, split: str) -> Benchmark:
    annotations = _first_file(folder, [f"{split}.json", f"data/{split}.json"])
    images = folder / "images" if (folder / "images").is_dir() else folder
    items = []
    for entry in _json_list(annotations, ("uid", "img0", "img1")):
        load = image_loader(images / str(entry["img0"]), images / str(entry["img1"]))
        items.append(Item(str(entry["uid"]), PROMPTS["image-edit-request"], load))
    source = {"benchmark": "image-edit-request", "data": str(folder), "split": split}
    return Benchmark("image-edit-request", "describe", source, PROMPTS["image-edit-request"], items)


def _first_file(folder: Path, candidates: list[str]) -> Path:
    for name in candidates:
        if (folder / name).is_file():
            return folder / name
    raise UsageError(f"'{folder}' has none of {', '.join(candidates)}")


def _json_list(path: Path, keys: tuple[str, ...]) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"'{path}' is not JSON ({exc})") from None
    if not isinstance(data, list) or not all(isinstance(e, dict) and all(k in e for k in keys) for e in data):
        raise UsageError(f"'{path}': expected a list of objects with {', '.join(keys)}")
    return data


def _find(folder: Path, stem: str) -> Path:
    """`folder/stem.<ext>` for the usual image extensions (the path itself when none exists, so
    the error names what was looked for when the batch is read)."""
    for ext in (".png", ".jpg", ".jpeg", ".webp"):
        if (folder / f"{stem}{ext}").is_file():
            return folder / f"{stem}{ext}"
    return folder / f"{stem}.png"
