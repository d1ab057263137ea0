"""The human audit: a deterministic sample of exported samples, a sheet to fill in, and its scoring
with 95% Wilson intervals; the round trip with a sheet filled in by this script."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from imgdiff.cli import main
from imgdiff.errors import UsageError
from imgdiff.report import audit, build_report
from report_runs import write_hand_run


@pytest.fixture
def run(tmp_path: Path) -> Path:
    write_hand_run(tmp_path / "run", kept=12)
    return tmp_path / "run"


def test_wilson_matches_the_textbook_values() -> None:
    assert audit.wilson(9, 12) == pytest.approx((0.4677, 0.9111), abs=1e-4)
    assert audit.wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert audit.wilson(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert audit.wilson(0, 0) == (0.0, 1.0)


def test_sample_is_deterministic_and_only_exported_samples(run: Path) -> None:
    rows = audit.draw(run, 5)
    assert rows == audit.draw(run, 5)
    assert [r["sample"] for r in rows] == [r["sample"] for r in audit.draw(run, 12)][
        :5
    ]  # a prefix of a bigger one
    every = audit.draw(run, 1000)
    # 12 kept pairs with one described box each; the describe-dropped boxes are not samples
    assert len(every) == 12 and all(s["sample"].endswith("_0") for s in every)


def fill(sheet: Path, ratings: list[tuple[str, str, str]]) -> None:
    """Rate the sheet's rows in order; rows past the list stay blank."""
    with sheet.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row, (box, content, difference) in zip(rows, ratings, strict=False):
        row.update(box=box, content_captions=content, difference_caption=difference)
    with sheet.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=audit.COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def test_round_trip_gives_the_exact_shares_and_intervals(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", str(run), "--n", "12"]) == 0
    sheet = run / "audit" / audit.SHEET
    assert (run / "audit" / "sheet.html").is_file()
    # box: 9 high, 2 medium, 1 low; content: 11 high, 1 blank; difference: 6 high, 6 low (any case)
    ratings = (
        [("high", "high", "high")] * 6 + [("high", "HIGH", " Low ")] * 3 + [("medium", "high", "low")] * 2
    )
    ratings += [("low", "", "low")]
    fill(sheet, ratings)
    capsys.readouterr()
    assert main(["audit", "--score", str(sheet), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["rows"], result["rated_rows"]) == (12, 12)
    shares = {axis: {s["rating"]: s for s in result["axes"][axis]} for axis in audit.AXES}
    box = shares["box"]
    assert [box[r]["count"] for r in audit.RATINGS] == [9, 2, 1] and box["high"]["share"] == 0.75
    assert (box["high"]["low"], box["high"]["high"]) == pytest.approx((0.4677, 0.9111), abs=1e-4)
    assert (box["low"]["low"], box["low"]["high"]) == pytest.approx((0.0149, 0.3539), abs=1e-4)
    content = shares["content_captions"]["high"]
    assert (content["count"], content["rated"], content["share"]) == (11, 11, 1.0)
    assert (content["low"], content["high"]) == pytest.approx((0.7412, 1.0), abs=1e-4)
    difference = shares["difference_caption"]
    assert difference["high"]["share"] == difference["low"]["share"] == 0.5
    assert (difference["low"]["low"], difference["low"]["high"]) == pytest.approx((0.2538, 0.7462), abs=1e-4)
    # the report shows them once the scored sheet is in the run
    html = build_report(run).read_text()
    assert 'data-audit="box.high">75.0%<' in html and "46.8–91.1%" in html


def test_bad_sheets_are_one_line(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(run), "--n", "3"]) == 0
    sheet = run / "audit" / audit.SHEET
    fill(sheet, [("high", "great", "low")])
    with pytest.raises(UsageError, match="line 2: content_captions is 'great'; rate it high, medium or low"):
        audit.score(sheet)
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    for args, message in [
        (["audit", "--score", str(other)], "not an audit sheet"),
        (["audit", "--score", str(tmp_path / "missing.csv")], "not found"),
        (["audit", str(run), "--score", str(sheet)], "not both"),
        (["audit"], "give DIR"),
        (["audit", str(run), "--n", "0"], "at least 1"),
        (["audit", str(tmp_path)], "not an imgdiff run"),
    ]:
        capsys.readouterr()
        assert main(args) == 2, args
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err


def test_a_rated_sheet_is_never_overwritten(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(run), "--n", "3"]) == 0
    sheet = run / "audit" / audit.SHEET
    fill(sheet, [("high", "high", "high")])
    before = sheet.read_bytes()
    assert main(["audit", str(run), "--n", "3"]) == 2
    assert "already holds ratings" in capsys.readouterr().err
    assert sheet.read_bytes() == before
