"""The one streaming pass over a run: records.jsonl line by line, side tables batch by batch.

Only numbers and counters are kept (and the few records the gallery shows), so memory grows with
the number of scores, not with the records' text or images. Anything numeric the run stores is
collected by name, so scores and columns of stages this code does not know still get plotted.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from imgdiff.boxes import iou
from imgdiff.record import Record, Region, TruthBox
from imgdiff.report.gallery import GalleryPicker
from imgdiff.report.textstats import TextStats
from imgdiff.store import RunStore

# Side-table columns that are positions or indices, not scores.
_NOT_SCORES = {"x1", "y1", "x2", "y2", "candidate", "index", "source_index"}


@dataclass
class Split:
    """Values of one quantity, split by outcome (kept / rejected record, accepted / dropped box)."""

    kept: list[float] = field(default_factory=list)
    rejected: list[float] = field(default_factory=list)

    def add(self, value: Any, kept: bool) -> None:
        if _is_number(value) and math.isfinite(value):
            (self.kept if kept else self.rejected).append(float(value))

    def __len__(self) -> int:
        return len(self.kept) + len(self.rejected)


@dataclass
class RunData:
    meta: dict[str, Any]
    stats: dict[str, Any]
    gallery: GalleryPicker
    records: int = 0
    kept: int = 0
    kinds: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, status)
    record_scores: dict[str, Split] = field(default_factory=dict)
    box_scores: dict[str, Split] = field(default_factory=dict)
    tables: dict[tuple[str, str], dict[str, Split]] = field(default_factory=dict)
    table_rows: dict[tuple[str, str], int] = field(default_factory=dict)
    table_reasons: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)
    boxes_per_pair: Counter[int] = field(default_factory=Counter)
    area_share: list[float] = field(default_factory=list)
    truth_records: list[Record] = field(default_factory=list)  # light copies for eval.localization
    best_iou: list[float] = field(default_factory=list)  # per truth box, its best predicted box
    text: TextStats = field(default_factory=TextStats)


def gather(store: RunStore, gallery: GalleryPicker) -> RunData:
    data = RunData(store.read_meta() or {}, store.read_stats() or {}, gallery)
    for raw in store.iter_record_dicts():
        if isinstance(raw, dict):
            _add_record(data, tidy(raw), store.root)
    for key in store.tables():
        path = store.table_path(*key)
        _add_table(data, key, path)
    return data


_CONTAINERS = {
    "scores": dict,
    "images": dict,
    "aux": dict,
    "generation": dict,
    "regions": list,
    "truth": list,
}


def tidy(raw: dict[str, Any]) -> dict[str, Any]:
    """The record with every container field of the type the schema gives it (a wrong one is left
    out), so that a damaged or foreign line is shown as far as it goes instead of stopping the report."""
    out = dict(raw)
    for key, kind in _CONTAINERS.items():
        if not isinstance(out.get(key), kind):
            out[key] = kind()
    if not isinstance(out.get("edit"), dict):
        out["edit"] = None
    out["regions"] = [_tidy_region(r) for r in out["regions"] if isinstance(r, dict)]
    out["truth"] = [t for t in out["truth"] if isinstance(t, dict)]
    for key in ("id", "kind", "caption_a", "caption_b"):
        if key in out and not isinstance(out[key], str):
            out[key] = str(out[key])
    if not isinstance(out.get("source_index"), int):
        out["source_index"] = 0
    return out


def _tidy_region(region: dict[str, Any]) -> dict[str, Any]:
    out = dict(region)
    for key in ("scores", "captions"):
        if not isinstance(out.get(key), dict):
            out[key] = {}
    return out


def _add_record(data: RunData, raw: dict[str, Any], root: Path) -> None:
    kept = raw.get("status", "kept") == "kept"
    data.records += 1
    data.kept += kept
    data.kinds[str(raw.get("kind", "unknown")), "kept" if kept else "rejected"] += 1
    for name, value in raw["scores"].items():
        if _is_number(value):  # NaN too: its plot then says it has no finite value
            data.record_scores.setdefault(str(name), Split()).add(value, kept)
    regions = raw["regions"]
    for region in regions:
        accepted = region.get("rejected_by") is None
        for name, value in region["scores"].items():
            if name not in _NOT_SCORES and _is_number(value):
                data.box_scores.setdefault(str(name), Split()).add(value, kept and accepted)
    if kept:
        accepted = [r for r in regions if r.get("rejected_by") is None and _is_box(r.get("box"))]
        data.boxes_per_pair[len(accepted)] += 1
        size = _image_size(root, raw) if accepted else None
        if size is not None:
            data.area_share += [_area(r["box"]) / (size[0] * size[1]) for r in accepted]
        data.text.add(raw)
    if raw.get("truth"):
        _add_truth(data, raw, regions)
    elif raw.get("kind") == "distractor":
        data.truth_records.append(_light(raw, []))
    data.gallery.offer(raw)


def _add_truth(data: RunData, raw: dict[str, Any], regions: list[dict[str, Any]]) -> None:
    """A light copy for eval.localization's own scoring, and each truth box's best IoU."""
    record = _light(raw, regions)
    data.truth_records.append(record)
    if record.kind == "distractor":
        return
    predicted = [r.box for r in record.regions]
    for truth in record.truth:
        data.best_iou.append(max((iou(p, truth.box) for p in predicted), default=0.0))


def _light(raw: dict[str, Any], regions: list[dict[str, Any]]) -> Record:
    truth = [TruthBox(list(t["box"])) for t in raw.get("truth") or [] if _is_box(t.get("box"))]
    boxes = [Region(list(r["box"]), str(r.get("source", ""))) for r in regions if _is_box(r.get("box"))]
    return Record(
        id=str(raw.get("id", "")),
        source_index=raw["source_index"],
        seed=0,
        kind=raw.get("kind", "unknown"),
        regions=boxes,
        truth=truth,
        status=raw.get("status", "kept"),
        rejected_by=raw.get("rejected_by"),
    )


def _add_table(data: RunData, key: tuple[str, str], path: Path) -> None:
    """Numeric columns of a side table, split by its `kept` column when it has one."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = data.tables.setdefault(key, {})
    reasons = data.table_reasons.setdefault(key, Counter())
    try:
        table = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid):
        return  # an unreadable table is left out of the report, not fatal
    schema = table.schema_arrow
    numeric = [
        f.name
        for f in schema
        if (pa.types.is_floating(f.type) or pa.types.is_integer(f.type)) and f.name not in _NOT_SCORES
    ]
    wanted = numeric + [n for n in ("kept", "reason") if n in schema.names]
    for batch in table.iter_batches(columns=wanted, batch_size=65536):
        rows = batch.to_pydict()
        count = batch.num_rows
        data.table_rows[key] = data.table_rows.get(key, 0) + count
        kept = rows.get("kept") or [True] * count
        for name in numeric:
            split = columns.setdefault(name, Split())
            for value, flag in zip(rows[name], kept, strict=True):
                if value is not None:
                    split.add(value, bool(flag))
        for reason in rows.get("reason") or []:
            if reason:
                reasons[str(reason).split(":", 1)[0]] += 1


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_box(box: Any) -> bool:
    return isinstance(box, list | tuple) and len(box) == 4 and all(isinstance(v, int | float) for v in box)


def _area(box: list[float]) -> float:
    return max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0)


def _image_size(root: Path, raw: dict[str, Any]) -> tuple[int, int] | None:
    """Image a's size from its file header (no decoding); None when the image is not there."""
    rel = raw["images"].get("a")
    if not isinstance(rel, str):
        return None
    try:
        with Image.open(root / rel) as image:
            return image.size
    except (OSError, ValueError):
        return None
