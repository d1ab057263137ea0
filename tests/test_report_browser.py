"""The report in a real browser (headless Debian chromium via Playwright): the report of a demo run
and of a tiny `img-diff` run (captions -> lexicon edits -> tiny SDXL pairs -> pixel stages) load
from file:// with no console error, no failed request and no network, every image decodes, and the
funnel numbers on the page are stats.json's. Screenshots go to artifacts/ (a CI artifact).

Locally these tests skip when chromium is absent; with CI set they fail instead (.ci/run installs it).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from browser import PageCheck, open_page, require_browser
from imgdiff.cli import main
from imgdiff.tiny import TINY_CAPTIONS, tiny_recipe

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture(scope="module")
def browser() -> str:
    return require_browser()


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report-demo") / "run"
    assert main(["demo", "--out", str(out), "--limit", "10", "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, tiny_models: Any) -> Path:
    """The `img-diff` recipe as `imgdiff models make-tiny` writes it, on 2 of its captions."""
    import yaml

    root = tmp_path_factory.mktemp("report-tiny")
    captions = root / "captions.txt"
    captions.write_text("\n".join(TINY_CAPTIONS[:2]) + "\n")
    recipe = root / "recipe.yaml"
    entries = {name: tiny_models(name) for name in ("llm", "sdxl", "clip", "blip", "fastsam", "llava")}
    recipe.write_text(yaml.safe_dump(tiny_recipe(entries, captions)))
    out = root / "run"
    assert main(["run", str(recipe), "--out", str(out), "--no-progress"]) == 0
    return out


def expected_funnel(run: Path) -> dict[str, str]:
    stats = json.loads((run / "stats.json").read_text())
    expected = {key: str(stats[key]) for key in ("records", "kept", "rejected")}
    for stage in stats["stages"]:
        name = stage["stage"]
        expected[f"{name}.in"] = str(stage["in"])
        expected[f"{name}.kept"] = str(stage["kept"])
        expected[f"{name}.rejected"] = str(sum(stage["rejected"].values()))
        for code, n in stage["rejected"].items():
            expected[f"{name}.rejected.{code}"] = str(n)
    return expected


def assert_clean(check: PageCheck) -> None:
    assert check.console_errors == []
    assert check.failed_requests == []
    assert check.broken_images == []


def test_demo_report_with_a_scored_audit_in_the_browser(browser: str, demo_run: Path) -> None:
    from imgdiff.report import audit

    # the audit sheet: a page that loads clean, and a CSV a script fills in
    assert main(["audit", str(demo_run), "--n", "4"]) == 0
    sheet = demo_run / "audit" / audit.SHEET
    check = open_page(sheet.with_name("sheet.html"))
    assert_clean(check)
    assert check.images == 4
    with sheet.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    rated = {"box": "high", "content_captions": "high", "difference_caption": "low"}
    with sheet.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=audit.COLUMNS)
        writer.writeheader()
        writer.writerows({**row, **rated} for row in rows)

    assert main(["report", str(demo_run), "--gallery", "6"]) == 0
    check = open_page(demo_run / "report" / "index.html", ARTIFACTS / "report-demo.png")
    assert_clean(check)
    # the funnel plot, score histograms, box plots and 6 kept thumbnails at least
    assert check.images >= 1 + 4 + 3 + 6
    funnel = {k: v for k, v in check.values.items() if not k.startswith("audit:")}
    assert funnel == expected_funnel(demo_run)
    assert check.values["audit:box.high"] == "100.0%"
    assert check.values["audit:difference_caption.low"] == "100.0%"
    assert (ARTIFACTS / "report-demo.png").stat().st_size > 10_000


def test_tiny_img_diff_report_in_the_browser(browser: str, tiny_run: Path) -> None:
    out = tiny_run.parent / "elsewhere" / "report"  # --out outside the run: links still resolve
    assert main(["report", str(tiny_run), "--out", str(out)]) == 0
    check = open_page(out / "index.html", ARTIFACTS / "report-tiny-img-diff.png")
    assert_clean(check)
    assert check.values == expected_funnel(tiny_run)
    html = (out / "index.html").read_text()
    for stage in ("edit", "generate"):
        assert f'data-funnel="{stage}.in"' in html
    assert "sdxl" in html and "llm" in html  # the models table
