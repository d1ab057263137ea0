"""Reading predicted and reference difference captions in the forms the benchmarks publish them.

Each reader turns a file into `{id: [sentences]}` and names the format it found, so the output of
`eval captions` says what it read. Detection looks at the JSON's shape only:

| format | shape | side |
|---|---|---|
| `imgdiff` | JSON lines, first line `{"imgdiff_predictions": 1, ...}` (`imgdiff predict`) | predictions |
| `coco` | `{"annotations": [{"image_id", "caption"}, ...], ...}` (COCO captions) | references |
| `coco-results` | `[{"image_id", "caption"}, ...]` (COCO results) | either |
| `spot-the-diff` | `[{"img_id", "sentences": [...]}, ...]` (its annotation files) | either |
| `image-edit-request` | `[{"uid", "sents": [...], "img0", "img1"}, ...]` (its json files) | either |
| `dict` | `{id: [sentences]}` or `{id: sentence}` (Spot-the-Diff's released predictions) | either |

Ids are compared as strings (COCO's integer ids and Spot-the-Diff's "1" meet). A prediction with
several sentences (Spot-the-Diff's model outputs list one sentence per difference) is joined with
spaces into one prediction per pair; every reference sentence is one reference.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from imgdiff.errors import UsageError
from imgdiff.eval.predictions import is_predictions_file, read_predictions

Sentences = dict[str, list[str]]


def read_captions(path: Path) -> tuple[Sentences, str]:
    """`({id: [sentences]}, format name)` of a captions file in any of the formats above."""
    if not path.is_file():
        raise UsageError(f"captions file '{path}' not found")
    if is_predictions_file(path):
        answers = read_predictions(path).answers()
        return {item_id: [text] for item_id, text in answers.items()}, "imgdiff"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"'{path}' is not JSON ({exc})") from None
    return _from_json(data, path)


def _from_json(data: Any, path: Path) -> tuple[Sentences, str]:
    if isinstance(data, dict) and isinstance(data.get("annotations"), list):
        return _grouped(data["annotations"], "image_id", "caption", path), "coco"
    if isinstance(data, dict):
        return {str(k): _sentences(v, path, str(k)) for k, v in data.items()}, "dict"
    if isinstance(data, list) and data and all(isinstance(item, dict) for item in data):
        first = data[0]
        if "image_id" in first and "caption" in first:
            return _grouped(data, "image_id", "caption", path), "coco-results"
        if "img_id" in first and "sentences" in first:
            return _grouped(data, "img_id", "sentences", path), "spot-the-diff"
        if "uid" in first and "sents" in first:
            return _grouped(data, "uid", "sents", path), "image-edit-request"
    raise UsageError(
        f"'{path}': unknown captions format (expected COCO annotations or results, "
        "Spot-the-Diff, Image-Edit-Request, an {id: [sentences]} dict or an imgdiff predictions file)"
    )


def _grouped(items: list[Any], id_key: str, text_key: str, path: Path) -> Sentences:
    out: Sentences = {}
    for number, item in enumerate(items):
        if not isinstance(item, dict) or id_key not in item or text_key not in item:
            raise UsageError(f"'{path}': item {number} lacks '{id_key}' or '{text_key}'")
        out.setdefault(str(item[id_key]), []).extend(_sentences(item[text_key], path, str(item[id_key])))
    return out


def _sentences(value: Any, path: Path, item_id: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise UsageError(f"'{path}': id {item_id}: expected a sentence or a list of sentences")


def one_prediction(sentences: list[str]) -> str:
    """A pair's prediction: its sentences joined (Spot-the-Diff's outputs list one per difference)."""
    return " ".join(s.strip() for s in sentences if s.strip())
