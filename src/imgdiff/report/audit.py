"""The human audit of Img-Diff (METHOD.md section 4): rate exported samples on three axes.

The paper rated 1,000 samples: box correct 78.9%, content captions high quality 80.1%, difference
captions high quality 70.4%. `draw` picks a deterministic sample of the samples an export writes
(one per kept, described box: `export.samples.difference_samples`), ranked by a hash of the run seed and the
sample id, and writes `DIR/audit/sheet.csv` to fill in and `sheet.html` to look at. `score` reads a
filled sheet: for each axis, the share of each rating among the rated rows with a 95% Wilson
interval (it stays inside [0, 1] and is honest for small samples, unlike the normal approximation).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import heapq
import math
from pathlib import Path
from typing import Any

from imgdiff.errors import UsageError
from imgdiff.export.samples import difference_samples
from imgdiff.record import Record, Region, TruthBox
from imgdiff.store import RunStore

AXES = ("box", "content_captions", "difference_caption")
AXIS_TITLES = {
    "box": "box marks the difference",
    "content_captions": "content (region) captions",
    "difference_caption": "difference caption",
}
RATINGS = ("high", "medium", "low")
Z95 = 1.959963984540054
TEXT_COLUMNS = (
    "sample",
    "record",
    "box_xyxy",  # where the box is; the axis `box` is whether it is right
    "image_a",
    "image_b",
    "region_caption_a",
    "region_caption_b",
    "difference",
)
COLUMNS = (*TEXT_COLUMNS, *AXES, "notes")
SHEET = "sheet.csv"


def wilson(count: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a share count/n."""
    if n == 0:
        return 0.0, 1.0
    p = count / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def draw(run_dir: Path, n: int) -> list[dict[str, str]]:
    """The sheet's rows: the n samples with the smallest hash of (run seed, sample id)."""
    if n <= 0:
        raise UsageError(f"audit --n must be at least 1, got {n}")
    store = RunStore(run_dir)
    meta = store.read_meta()
    if meta is None:
        raise UsageError(f"'{run_dir}' is not an imgdiff run directory (no run.json)")
    seed = meta.get("seed", 0)
    heap: list[tuple[int, str, dict[str, str]]] = []
    for raw in store.iter_record_dicts():
        try:
            record = _readable(raw)
        except (TypeError, ValueError, KeyError, AttributeError):
            continue  # a record this version cannot read has no sample to audit
        for difference in difference_samples(record):
            sample, region = difference.id, record.regions[difference.index]
            rank = int.from_bytes(hashlib.sha256(f"{seed}:{sample}".encode()).digest()[:8], "big")
            row = {
                "sample": sample,
                "record": record.id,
                "box_xyxy": " ".join(f"{v:g}" for v in region.box),
                "image_a": record.images.get("a", ""),
                "image_b": record.images.get("b", ""),
                "region_caption_a": region.captions.get("a", ""),
                "region_caption_b": region.captions.get("b", ""),
                "difference": region.difference or "",
            }
            entry = (-rank, sample, row)
            if len(heap) < n:
                heapq.heappush(heap, entry)
            elif entry[:2] > heap[0][:2]:
                heapq.heapreplace(heap, entry)
    if not heap:
        raise UsageError(f"'{run_dir}' has no exported samples to audit (no kept pair with a described box)")
    return [row for _, _, row in sorted(heap, key=lambda e: (-e[0], e[1]))]


_FIELDS = {kind: {f.name for f in dataclasses.fields(kind)} for kind in (Record, Region, TruthBox)}


def _readable(raw: dict[str, Any]) -> Record:
    """A Record from a line of any version: fields this version does not know are left out."""
    data = {k: v for k, v in raw.items() if k in _FIELDS[Record]}
    for name, kind in (("regions", Region), ("truth", TruthBox)):
        data[name] = [{k: v for k, v in item.items() if k in _FIELDS[kind]} for item in raw.get(name) or []]
    return Record.from_dict(data)


def write_sheet(run_dir: Path, rows: list[dict[str, str]], out: Path | None = None) -> Path:
    """sheet.csv with blank rating columns; returns it (report/page.py writes sheet.html beside it)."""
    folder = out or RunStore(run_dir).audit_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SHEET
    if path.exists() and _rated_rows(path):
        raise UsageError(f"{path} already holds ratings; move it away before drawing a new sheet")
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, **dict.fromkeys((*AXES, "notes"), "")})
    return path


def _rated_rows(path: Path) -> int:
    try:
        return score(path)["rated_rows"]
    except UsageError:
        return 0


def score(sheet: Path) -> dict[str, Any]:
    """Shares per axis and rating with Wilson intervals; blank ratings are left out of that axis."""
    if not sheet.is_file():
        raise UsageError(f"audit --score: '{sheet}' not found")
    counts = {axis: dict.fromkeys(RATINGS, 0) for axis in AXES}
    rows = rated_rows = 0
    with sheet.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [axis for axis in AXES if axis not in (reader.fieldnames or [])]
        if missing:
            raise UsageError(f"{sheet}: not an audit sheet (no column {', '.join(missing)})")
        for line, row in enumerate(reader, start=2):
            rows += 1
            any_rated = False
            for axis in AXES:
                value = (row.get(axis) or "").strip().lower()
                if not value:
                    continue
                if value not in counts[axis]:
                    raise UsageError(
                        f"{sheet} line {line}: {axis} is '{row.get(axis)}'; rate it high, medium or low"
                    )
                counts[axis][value] += 1
                any_rated = True
            rated_rows += any_rated
    result: dict[str, Any] = {"sheet": str(sheet), "rows": rows, "rated_rows": rated_rows, "axes": {}}
    for axis in AXES:
        rated = sum(counts[axis].values())
        result["axes"][axis] = [_share(rating, counts[axis][rating], rated) for rating in RATINGS]
    return result


def _share(rating: str, count: int, rated: int) -> dict[str, Any]:
    low, high = wilson(count, rated)
    return {
        "rating": rating,
        "count": count,
        "rated": rated,
        "share": count / rated if rated else 0.0,
        "low": low,
        "high": high,
    }


def format_scores(result: dict[str, Any]) -> str:
    lines = [f"{result['sheet']}: {result['rated_rows']} of {result['rows']} samples rated"]
    for axis in AXES:
        lines.append(f"{AXIS_TITLES[axis]}:")
        for share in result["axes"][axis]:
            lines.append(
                f"  {share['rating']:<7} {share['count']:>5}/{share['rated']:<5} "
                f"{100 * share['share']:5.1f}%  95% CI {100 * share['low']:5.1f}-{100 * share['high']:5.1f}%"
            )
    return "\n".join(lines)
