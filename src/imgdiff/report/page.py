"""index.html of the report and sheet.html of the audit, from Jinja2 templates (autoescaped).

The report folder holds only what it links: `plots/*.svg`, `gallery/*.jpg` and `index.html`; full-size
images are linked where they lie in the run, by relative path, so the folder stays small and opens
from the file system anywhere beside the run.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from imgdiff.errors import UsageError
from imgdiff.eval.localization import IOU_MIN, evaluate
from imgdiff.report import audit, plots
from imgdiff.report.gallery import GalleryPicker, make_items
from imgdiff.report.gather import RunData, Split, gather
from imgdiff.report.runinfo import run_info
from imgdiff.report.thresholds import for_record_score, for_unprefixed, recipe_thresholds
from imgdiff.store import RunStore, atomic_write

_OWNED = ("plots", "gallery")  # sub-folders a new report replaces; nothing else is ever removed
GENERATOR = "imgdiff report"  # index.html's <meta name="generator">: how a report folder is known


def write_report(run_dir: Path, out: Path | None, gallery: int) -> Path:
    store = RunStore(run_dir)
    meta = store.read_meta()
    if meta is None:
        raise UsageError(f"'{run_dir}' is not an imgdiff run directory (no run.json)")
    if store.read_stats() is None:
        raise UsageError(f"'{run_dir}' has no stats.json yet: let `imgdiff run` finish a batch first")
    if gallery < 0:
        raise UsageError(f"report --gallery must be 0 or more, got {gallery}")
    folder = out or store.report_dir
    _prepare(folder)
    data = gather(store, GalleryPicker(int(meta.get("seed") or 0), gallery))
    context = _context(store, data, folder)
    html = _environment().get_template("index.html.j2").render(**context)
    atomic_write(folder / "index.html", html.encode("utf-8"))
    return folder / "index.html"


def _prepare(folder: Path) -> None:
    """An empty or new folder, or an earlier report: never clear a folder that holds other things."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"report --out {folder}: is a file, not a directory")
    if folder.is_dir() and any(folder.iterdir()) and not _is_report(folder / "index.html"):
        raise UsageError(f"report --out {folder}: exists and is not an imgdiff report; choose another folder")
    for name in _OWNED:
        shutil.rmtree(folder / name, ignore_errors=True)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"report --out {folder}: cannot create it: {exc.strerror}") from None


def _is_report(index: Path) -> bool:
    try:
        with index.open(encoding="utf-8", errors="replace") as handle:
            return f'content="{GENERATOR}"' in handle.read(2000)
    except OSError:
        return False


def _context(store: RunStore, data: RunData, folder: Path) -> dict[str, Any]:
    thresholds = recipe_thresholds(data.meta.get("recipe") or {})
    figures: dict[str, list[dict[str, str]]] = {"scores": [], "boxes": [], "tables": [], "text": []}

    def figure(group: str, name: str, title: str, note: str = "") -> Path:
        count = sum(len(v) for v in figures.values())
        file = f"plots/{count:03d}-{_slug(name)}.svg"  # numbered: two names never share a file
        figures[group].append({"file": file, "title": title, "note": note})
        return folder / file

    plots.funnel(folder / "plots/funnel.svg", data.stats.get("stages", []))
    order = {str(s.get("stage")): i for i, s in enumerate(data.stats.get("stages", []))}
    by_flow = sorted(
        data.record_scores.items(), key=lambda kv: (order.get(kv[0].split(".")[0], len(order)), kv[0])
    )
    for name, values in by_flow:  # a score never finite has a (labelled) empty plot
        lines = for_record_score(thresholds, name)
        plots.histogram(figure("scores", f"score-{name}", name), name, values, lines)
    for name, values in sorted(data.box_scores.items()):
        lines = for_unprefixed(thresholds, name)
        title = f"box score {name}"
        plots.histogram(figure("boxes", f"box-{name}", title), title, values, lines, ("accepted", "dropped"))
    for (stage, table), columns in sorted(data.tables.items()):
        for name, values in sorted(columns.items()):
            title = f"{stage}/{table}: {name}"
            lines = for_unprefixed(thresholds, name, {stage})
            path = figure("tables", f"table-{stage}-{table}-{name}", title)
            plots.histogram(path, title, values, lines, ("kept", "dropped"))
    if data.boxes_per_pair:
        counts = sorted(data.boxes_per_pair.items())
        plots.bars(
            figure("boxes", "boxes-per-pair", "boxes per kept pair"), "boxes per kept pair", counts, "boxes"
        )
    if data.area_share:
        title = "box area / image area (accepted boxes)"
        plots.histogram(
            figure("boxes", "area-share", title), title, Split(kept=data.area_share), (), ("boxes", "")
        )
    localization = _localization(data, figure)
    for name, lengths in data.text.lengths.items():
        if lengths:
            title = f"{name.replace('_', ' ')} length (words, kept)"
            plots.histogram(
                figure("text", f"length-{name}", title),
                title,
                Split(kept=[float(v) for v in lengths]),
                (),
                ("captions", ""),
            )
    picker = data.gallery
    return {
        "title": f"imgdiff report: {store.root.resolve().name}",
        "info": run_info(data.meta, data.stats, store.log_paths()),
        "stats": data.stats,
        "funnel": _funnel_rows(data.stats),
        "records": data.records,
        "kept": data.kept,
        "kinds": sorted(data.kinds.items()),
        "figures": figures,
        "table_rows": data.table_rows,
        "table_reasons": {k: v.most_common() for k, v in data.table_reasons.items() if v},
        "localization": localization,
        "text": data.text.summary(),
        "gallery": make_items(picker.kept(), store.root, folder),
        "rejected": {
            group: make_items(raws, store.root, folder) for group, raws in picker.rejected().items()
        },
        "audit": _audit(store),
        "axis_titles": audit.AXIS_TITLES,
        "generator": GENERATOR,
    }


def _funnel_rows(stats: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for entry in stats.get("stages", []):
        rejected = entry.get("rejected") or {}
        rows.append(
            {
                "stage": str(entry.get("stage", "?")),
                "in": entry.get("in", 0),
                "kept": entry.get("kept", 0),
                "rejected_total": sum(rejected.values()),
                "rejected": sorted(rejected.items(), key=lambda kv: (-kv[1], kv[0])),
                "seconds": float(entry.get("seconds") or 0.0),
            }
        )
    return rows


def _localization(data: RunData, figure: Any) -> dict[str, Any] | None:
    if not any(r.truth for r in data.truth_records):
        return None
    scores = evaluate(data.truth_records)
    if data.best_iou:
        title = "best IoU of each truth box (non-distractors)"
        plots.histogram(
            figure("boxes", "truth-iou", title),
            title,
            Split(kept=data.best_iou),
            (),
            ("truth boxes", ""),
            xlabel="IoU with the closest kept box",
            reference=IOU_MIN,
        )
    return scores


def _audit(store: RunStore) -> dict[str, Any] | None:
    sheet = store.audit_dir / audit.SHEET
    if not sheet.is_file():
        return None
    try:
        result = audit.score(sheet)
    except UsageError as exc:
        return {"error": str(exc)}
    return result if result["rated_rows"] else {"unrated": result["rows"]}


def write_audit_page(run_dir: Path, rows: list[dict[str, str]], folder: Path) -> Path:
    """sheet.html: each sample as the training sample shows it (the pair with its box), and its text."""
    from imgdiff.render import side_by_side

    images = folder / "images"
    shutil.rmtree(images, ignore_errors=True)
    images.mkdir(parents=True)
    shown = []
    for row in rows:
        entry = dict(row)
        try:
            with Image.open(run_dir / row["image_a"]) as a, Image.open(run_dir / row["image_b"]) as b:
                box = [float(v) for v in row["box_xyxy"].split()]
                pair = side_by_side(np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB")), box)
            picture = Image.fromarray(pair)
            if picture.width > 1200:
                picture = picture.resize(
                    (1200, round(picture.height * 1200 / picture.width)), Image.Resampling.LANCZOS
                )
            name = f"{_slug(row['sample'])}.jpg"
            picture.save(images / name, format="JPEG", quality=88)
            entry["picture"] = f"images/{name}"
        except (OSError, ValueError) as exc:
            entry["picture"], entry["problem"] = None, f"images unreadable: {exc}"
        shown.append(entry)
    html = (
        _environment()
        .get_template("sheet.html.j2")
        .render(
            rows=shown,
            axes=audit.AXES,
            axis_titles=audit.AXIS_TITLES,
            ratings=audit.RATINGS,
            sheet=audit.SHEET,
        )
    )
    atomic_write(folder / "sheet.html", html.encode("utf-8"))
    return folder / "sheet.html"


def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "figure"
