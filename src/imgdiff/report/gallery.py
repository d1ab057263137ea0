"""The gallery: which pairs the report shows, and their thumbnails.

The choice is deterministic from the run seed and the record ids alone (a hash of both, smallest
first), never from order or time: N kept pairs, and per rejection reason a few rejected ones. The
picker sees every record once during the streaming pass and keeps only its current choice. A
thumbnail is the pair side by side with its accepted boxes drawn (the layout the training samples
use), scaled down and stored as JPEG; it links to the full-size images in the run.
"""

from __future__ import annotations

import hashlib
import heapq
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
from PIL import Image

from imgdiff.render import box_on, side_by_side

PER_REASON = 4
THUMB_WIDTH = 640  # the whole side-by-side thumbnail; keeps a 24-pair gallery near 1 MB


@dataclass
class GalleryItem:
    id: str
    kind: str
    caption_a: str
    caption_b: str
    differences: list[str]
    reason: str | None
    thumb: str | None  # relative to the report folder; None when the run has no pixels for it
    full: dict[str, str]  # "a"/"b" -> link to the full-size image, relative to the report folder
    note: str = ""
    small: bool = False  # a thumbnail narrower than its card: the page shows its pixels unblurred


class GalleryPicker:
    def __init__(self, seed: int, kept: int, per_reason: int = PER_REASON) -> None:
        self.seed, self.kept_wanted, self.per_reason = seed, kept, per_reason
        self._kept: list[tuple[int, str, dict[str, Any]]] = []
        self._rejected: dict[str, list[tuple[int, str, dict[str, Any]]]] = {}

    def offer(self, raw: dict[str, Any]) -> None:
        rid = str(raw.get("id", ""))
        rank = int.from_bytes(hashlib.sha256(f"{self.seed}:{rid}".encode()).digest()[:8], "big")
        if raw.get("status", "kept") == "kept":
            _keep_smallest(self._kept, self.kept_wanted, rank, rid, raw)
        else:
            group = reason_group(raw)
            _keep_smallest(self._rejected.setdefault(group, []), self.per_reason, rank, rid, raw)

    def kept(self) -> list[dict[str, Any]]:
        return _in_order(self._kept)

    def rejected(self) -> dict[str, list[dict[str, Any]]]:
        return {group: _in_order(heap) for group, heap in sorted(self._rejected.items())}


def reason_group(raw: dict[str, Any]) -> str:
    """`<step>: <reason code>`, the way stats.json groups rejections."""
    code = str(raw.get("reason") or "no reason").split(":", 1)[0]
    return f"{raw.get('rejected_by') or '?'}: {code}"


def _keep_smallest(heap: list[Any], size: int, rank: int, rid: str, raw: dict[str, Any]) -> None:
    """Keep the `size` smallest ranks: a max-heap by negated rank, the largest on top to evict."""
    if size <= 0:
        return
    entry = (-rank, rid, raw)
    if len(heap) < size:
        heapq.heappush(heap, entry)
    elif entry[:2] > heap[0][:2]:
        heapq.heapreplace(heap, entry)


def _in_order(heap: list[tuple[int, str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [raw for _, _, raw in sorted(heap, key=lambda e: (-e[0], e[1]))]


def make_items(records: list[dict[str, Any]], run_root: Path, report_dir: Path) -> list[GalleryItem]:
    return [_item(raw, run_root, report_dir) for raw in records]


def _item(raw: dict[str, Any], run_root: Path, report_dir: Path) -> GalleryItem:
    rid = str(raw.get("id", "?"))
    images = {k: v for k, v in (raw.get("images") or {}).items() if isinstance(v, str)}
    kept = raw.get("status", "kept") == "kept"
    regions = [r for r in raw.get("regions") or [] if isinstance(r, dict)]
    shown = [r for r in regions if not kept or r.get("rejected_by") is None]
    item = GalleryItem(
        id=rid,
        kind=str(raw.get("kind", "unknown")),
        caption_a=str(raw.get("caption_a") or ""),
        caption_b=str(raw.get("caption_b") or ""),
        differences=[str(r["difference"]) for r in shown if kept and r.get("difference")],
        reason=None if kept else str(raw.get("reason") or ""),
        thumb=None,
        full={
            k: _link(run_root / rel, report_dir) for k, rel in images.items() if (run_root / rel).is_file()
        },
    )
    if "a" not in images or "b" not in images:
        item.note = "no images (rejected before any were made)" if not kept else "no images"
        return item
    try:
        thumb = _thumbnail(run_root / images["a"], run_root / images["b"], [r.get("box") for r in shown])
    except (OSError, ValueError) as exc:
        item.note = f"images unreadable: {exc}"
        return item
    target = report_dir / "gallery" / f"{_safe(rid)}.jpg"
    target.parent.mkdir(parents=True, exist_ok=True)
    thumb.save(target, format="JPEG", quality=82, optimize=True)
    item.thumb = f"gallery/{quote(target.name)}"
    item.small = thumb.width < THUMB_WIDTH // 2
    return item


def _thumbnail(path_a: Path, path_b: Path, boxes: list[Any]) -> Image.Image:
    with Image.open(path_a) as image_a, Image.open(path_b) as image_b:
        a = np.asarray(image_a.convert("RGB"))
        b = image_b.convert("RGB")
        if b.size != image_a.size:  # a pairs source may hold sizes that differ; show b at a's size
            b = b.resize(image_a.size)
        b = np.asarray(b)
    scale = min(1.0, THUMB_WIDTH / (2 * a.shape[1] + 20))
    for box in boxes:
        if isinstance(box, list) and len(box) == 4:
            try:  # drawn at full size, then scaled down with the pair, as the samples show them
                a, b = box_on(a, box), box_on(b, box)
            except ValueError:
                continue  # a box outside the image is not drawn
    joined = Image.fromarray(side_by_side(a, b))
    if scale < 1.0:
        size = (round(joined.width * scale), max(round(joined.height * scale), 1))
        joined = joined.resize(size, Image.Resampling.LANCZOS)
    return joined


def _link(path: Path, report_dir: Path) -> str:
    return quote(Path(os.path.relpath(path.resolve(), report_dir.resolve())).as_posix())


def _safe(rid: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in rid) or "record"
