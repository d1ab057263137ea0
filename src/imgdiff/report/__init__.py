"""`imgdiff report` and `imgdiff audit`: look at a run before training on it.

The report is a static folder (index.html, SVG plots, JPEG thumbnails) that opens from the file
system with no network. It is built from what every run has, `run.json`, `stats.json`,
`records.jsonl` and the stages' side tables, read in one streaming pass, and it renders scores and
columns it does not know by name, so runs of later stages render too.

    gather.py      the one pass over records and side tables -> RunData
    runinfo.py     recipe, models, versions, times, per-stage compute
    thresholds.py  threshold settings of the run's recipe, per score
    textstats.py   caption lengths, distinct-n, replaced objects
    plots.py       matplotlib figures as SVG files
    gallery.py     the deterministic choice of pairs and their thumbnails
    page.py        index.html (Jinja2 template in templates/)
    audit.py       the human audit: sample, sheet, score (Wilson intervals)
    cli.py         the `report` and `audit` commands
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_GALLERY = 24


def build_report(run_dir: str | Path, out: str | Path | None = None, gallery: int = DEFAULT_GALLERY) -> Path:
    """Write the report of `run_dir` into `out` (default `run_dir/report/`); return index.html."""
    from imgdiff.report.page import write_report

    return write_report(Path(run_dir), None if out is None else Path(out), gallery)
