"""COCO-format instance annotations: reading them and decoding their masks.

`read_instances` checks the JSON's structure once (a malformed file is one `ValueError` naming the
first problem) and indexes it by image; `decode_mask` turns a polygon list, an uncompressed RLE or
a compressed RLE string into a boolean mask with cv2 and numpy only (no pycocotools). The words
for the categories and caption editing are in `imgdiff.language`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

_SHIFT = 3  # fixed-point bits for cv2.fillPoly: polygon vertices keep 1/8 pixel precision
_FINE = 8  # polygons are rasterised this many times finer, then averaged


@dataclass(frozen=True)
class Annotation:
    id: int
    image_id: int
    category_id: int
    segmentation: Any
    iscrowd: bool
    area: float
    bbox: tuple[float, float, float, float]  # x, y, width, height


@dataclass(frozen=True)
class ImageInfo:
    id: int
    file_name: str
    width: int
    height: int


@dataclass
class Instances:
    images: dict[int, ImageInfo]
    categories: dict[int, str]
    supercategories: dict[int, str]
    by_image: dict[int, list[Annotation]] = field(default_factory=dict)


def read_instances(path: Path) -> Instances:
    """Parse and index a COCO instances file; ValueError names the first structural problem."""
    data = _read_json(path)
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in _TOP):
        raise ValueError(f"expected an object with lists {', '.join(_TOP)}")
    images, categories, supers = {}, {}, {}
    for i, raw in enumerate(data["images"]):
        _require(raw, f"images[{i}]", id=int, file_name=str, width=int, height=int)
        images[raw["id"]] = ImageInfo(raw["id"], raw["file_name"], raw["width"], raw["height"])
    for i, raw in enumerate(data["categories"]):
        _require(raw, f"categories[{i}]", id=int, name=str)
        categories[raw["id"]] = raw["name"]
        supers[raw["id"]] = str(raw.get("supercategory", raw["name"]))
    out = Instances(images, categories, supers, {image_id: [] for image_id in images})
    for i, raw in enumerate(data["annotations"]):
        _require(raw, f"annotations[{i}]", id=int, image_id=int, category_id=int)
        if raw["image_id"] not in images or raw["category_id"] not in categories:
            raise ValueError(f"annotations[{i}] names an unknown image or category")
        if not isinstance(raw.get("segmentation"), list | dict):
            raise ValueError(f"annotations[{i}].segmentation must be polygons or an RLE")
        bbox = raw.get("bbox", [0, 0, 0, 0])
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_number(v) for v in bbox)):
            raise ValueError(f"annotations[{i}].bbox must be [x, y, width, height]")
        area = raw.get("area", bbox[2] * bbox[3])
        ann = Annotation(
            raw["id"], raw["image_id"], raw["category_id"], raw["segmentation"],
            bool(raw.get("iscrowd", 0)), float(area) if _number(area) else 0.0, tuple(map(float, bbox)),
        )  # fmt: skip
        out.by_image[ann.image_id].append(ann)
    return out


def read_captions(path: Path) -> dict[int, str]:
    """{image id: its first caption, in file order} from a COCO captions file."""
    data = _read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise ValueError("expected an object with a list 'annotations'")
    out: dict[int, str] = {}
    for i, raw in enumerate(data["annotations"]):
        _require(raw, f"annotations[{i}]", image_id=int, caption=str)
        out.setdefault(raw["image_id"], raw["caption"].strip())
    return out


def decode_mask(segmentation: Any, height: int, width: int) -> np.ndarray:
    """A boolean HxW mask from COCO polygons, an uncompressed RLE or a compressed RLE string."""
    if isinstance(segmentation, list):
        return _polygons(segmentation, height, width)
    rle_h, rle_w = segmentation["size"]
    counts = segmentation["counts"]
    runs = _rle_counts(counts) if isinstance(counts, str | bytes) else np.asarray(counts, np.int64)
    if runs.sum() != rle_h * rle_w or (rle_h, rle_w) != (height, width):
        raise ValueError(f"RLE of size {rle_w}x{rle_h} does not cover a {width}x{height} image")
    values = np.arange(len(runs)) % 2 == 1  # runs alternate, starting with background
    return np.repeat(values, runs).reshape(rle_w, rle_h).T.copy()  # column-major


def _polygons(polygons: list[Any], height: int, width: int) -> np.ndarray:
    """Pixels more than half inside the polygons: rasterised `_FINE` times finer over their box,
    then averaged, so the mask's area matches the polygon's (cv2.fillPoly alone fills every pixel
    the outline touches, about 5% too many on COCO objects)."""
    mask = np.zeros((height, width), bool)
    points = [np.asarray(p, np.float64).reshape(-1, 2) for p in polygons if len(p) >= 6]
    if not points:
        return mask
    every = np.concatenate(points)
    x0, y0 = (max(int(v) - 1, 0) for v in every.min(axis=0))
    x1, y1 = min(int(every[:, 0].max()) + 2, width), min(int(every[:, 1].max()) + 2, height)
    if x1 <= x0 or y1 <= y0:
        return mask
    fine = np.zeros(((y1 - y0) * _FINE, (x1 - x0) * _FINE), np.uint8)
    # COCO coordinates are continuous (pixel i covers [i, i+1)); cv2 samples at integer points.
    shifted = [np.round(((p - (x0, y0)) * _FINE - 0.5) * (1 << _SHIFT)).astype(np.int32) for p in points]
    cv2.fillPoly(fine, shifted, 255, lineType=cv2.LINE_8, shift=_SHIFT)
    mask[y0:y1, x0:x1] = cv2.resize(fine, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA) > 127
    return mask


def _rle_counts(text: str | bytes) -> np.ndarray:
    """Run lengths of COCO's compressed RLE string (pycocotools' rleFrString, in Python)."""
    data = text.encode() if isinstance(text, str) else text
    runs: list[int] = []
    p = 0
    while p < len(data):
        x, k, more = 0, 0, True
        while more:
            c = data[p] - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p, k = p + 1, k + 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(runs) > 2:
            x += runs[-2]
        runs.append(x)
    return np.asarray(runs, np.int64)


_TOP = ("images", "annotations", "categories")


def _read_json(path: Path) -> Any:
    try:
        with path.open("rb") as handle:
            return json.load(handle)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at line {exc.lineno})") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text ({exc.reason})") from None
    except RecursionError:
        raise ValueError("nested too deeply to be COCO annotations") from None


def _require(raw: Any, where: str, **types: type) -> None:
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be an object")
    for key, kind in types.items():
        value = raw.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(f"{where}.{key} must be {kind.__name__}, got {value!r:.40}")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# Caption words per COCO category, "singular forms | plural forms"; the first of each is the one we
# write. A word belongs to one category only (`bike` is a bicycle), and modifiers that often stand
# for something else (`ski slope`, `baseball game`, `orange` the colour) are left out where we can.
