"""The report's figures, drawn with matplotlib's object API (no pyplot state, Agg only) as SVG files.

SVG text stays text (`svg.fonttype: none`) and the file carries no date and a fixed id salt, so a
figure is small and the same data gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from imgdiff.report.gather import Split
from imgdiff.report.thresholds import Threshold

KEPT, REJECTED = "#4C72B0", "#DD8452"
LINE_COLOURS = {"min": "#C44E52", "gt": "#C44E52", "max": "#8172B3", "lt": "#8172B3"}
_RC = {"svg.fonttype": "none", "svg.hashsalt": "imgdiff-report", "font.size": 9}


def _figure(width: float = 5.2, height: float = 2.9, right: float = 0.97, left_in: float = 0.6) -> Any:
    """Fixed margins: a layout engine measures every text on every save, which cost half the time."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    figure.subplots_adjust(left=left_in / width, right=right, bottom=0.5 / height, top=1 - 0.3 / height)
    return figure, figure.add_subplot()


def _save(figure: Any, path: Path) -> None:
    import matplotlib

    path.parent.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context(_RC):
        figure.savefig(path, format="svg", metadata={"Date": None})


def histogram(
    path: Path,
    title: str,
    values: Split,
    thresholds: Sequence[Threshold] = (),
    labels: tuple[str, str] = ("kept", "rejected"),
    xlabel: str = "",
    reference: float | None = None,
) -> None:
    """Stacked histogram of kept and rejected values, with the threshold lines of the recipe."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        figure, axes = _figure()
        data = np.array(values.kept + values.rejected, dtype=float)
        edges = _edges(data, [t.value for t in thresholds])
        stacks = [np.array(values.kept), np.array(values.rejected)]
        shown = [
            (s, label, c) for s, label, c in zip(stacks, labels, (KEPT, REJECTED), strict=True) if s.size
        ]
        if not shown:  # a score stored only as NaN or infinity: say so rather than draw nothing
            axes.text(0.5, 0.5, "no finite values", ha="center", va="center", transform=axes.transAxes)
            shown = [(np.array([]), "", KEPT)]
        axes.hist(
            [s for s, _, _ in shown],
            bins=edges,
            stacked=True,
            label=[f"{label} ({s.size})" for s, label, _ in shown],
            color=[c for _, _, c in shown],
        )
        for threshold in thresholds:
            axes.axvline(
                threshold.value,
                color=LINE_COLOURS[threshold.op],
                linestyle="--",
                linewidth=1.4,
                label=threshold.label,
            )
        if reference is not None:
            axes.axvline(reference, color="black", linestyle=":", linewidth=1.2, label=f"{reference:g}")
        if edges[1] - edges[0] == 1.0:  # integer bins: integer ticks
            axes.xaxis.set_major_locator(_integers())
        axes.yaxis.set_major_locator(_integers())
        axes.set_title(title)
        axes.set_xlabel(xlabel)
        axes.set_ylabel("count")
        axes.legend(fontsize=7, frameon=False)
        _save(figure, path)


def _edges(data: np.ndarray, marks: list[float]) -> np.ndarray:
    """Integer bins for small counts, else 40 bins over the data and the threshold marks."""
    low = min([float(data.min())] + marks) if data.size else min(marks, default=0.0)
    high = max([float(data.max())] + marks) if data.size else max(marks, default=1.0)
    if data.size and np.all(data == np.round(data)) and high - low <= 40:
        return np.arange(np.floor(low), np.ceil(high) + 2) - 0.5
    if high <= low:  # one value: a window around it on its own scale (a share stays near its value)
        pad = abs(low) * 0.5 or 0.5
        low, high = low - pad, high + pad
    return np.linspace(low, high, 41)


def funnel(path: Path, stages: list[dict[str, Any]]) -> None:
    """One bar per step: kept, and rejected stacked by reason code."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        names = [str(s.get("stage", "?")) for s in stages]
        figure, axes = _figure(7.2, 0.55 * len(names) + 1.3, right=0.72, left_in=1.0)
        y = np.arange(len(names))[::-1]
        kept = np.array([float(s.get("kept", 0)) for s in stages])
        axes.barh(y, kept, color=KEPT, label="kept")
        left = kept.copy()
        reasons = sorted({code for s in stages for code in (s.get("rejected") or {})})
        # warm shades for rejections, so that none can be mistaken for the kept (blue) part
        palette = matplotlib.colormaps["YlOrRd"]
        for i, code in enumerate(reasons):
            counts = np.array([float((s.get("rejected") or {}).get(code, 0)) for s in stages])
            shade = palette(0.35 + 0.55 * i / max(len(reasons) - 1, 1))
            axes.barh(y, counts, left=left, color=shade, label=f"rejected: {code}")
            left += counts
        axes.set_yticks(y, names)
        axes.xaxis.set_major_locator(_integers())
        axes.set_xlabel("records")
        axes.set_title("funnel: records into each step")
        axes.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        _save(figure, path)


def bars(path: Path, title: str, counts: Sequence[tuple[str, float]], xlabel: str = "") -> None:
    """Vertical bars for a few labelled counts (boxes per pair, kinds)."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        figure, axes = _figure()
        labels = [str(k) for k, _ in counts]
        axes.bar(range(len(labels)), [v for _, v in counts], color=KEPT)
        axes.set_xticks(
            range(len(labels)), labels, rotation=30 if max(map(len, labels), default=0) > 6 else 0
        )
        axes.yaxis.set_major_locator(_integers())
        axes.set_title(title)
        axes.set_xlabel(xlabel)
        axes.set_ylabel("count")
        _save(figure, path)


def _integers() -> Any:
    """Ticks at whole numbers only: counts are never fractional."""
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True, min_n_ticks=1)
