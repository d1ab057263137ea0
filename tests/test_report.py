"""`imgdiff report` without a browser: any run renders from its records and side tables, including
scores, fields and tables this version does not know; the gallery's choice is deterministic; bad
input is one line and exit 2. (The browser tests are in test_report_browser.py.)"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from imgdiff.cli import main
from imgdiff.eval.localization import evaluate
from imgdiff.report import build_report
from imgdiff.report.gallery import GalleryPicker
from imgdiff.report.gather import _light
from imgdiff.report.textstats import TextStats
from imgdiff.report.thresholds import for_record_score, for_unprefixed, recipe_thresholds
from report_runs import RECIPE, write_hand_run


@pytest.fixture
def hand_run(tmp_path: Path) -> Path:
    write_hand_run(tmp_path / "run")
    return tmp_path / "run"


def _svg_texts(folder: Path) -> str:
    return "\n".join(p.read_text() for p in sorted((folder / "plots").glob("*.svg")))


def test_any_run_renders_with_what_it_does_not_know(hand_run: Path) -> None:
    index = build_report(hand_run)
    html = index.read_text()
    svg = _svg_texts(index.parent)
    # a histogram per stored score, with the threshold lines of the run's recipe
    for title in (
        "pair_filter.clip_similarity",
        "future.wobble",
        "box score future_box_score",
        "future/things: jitter",
    ):
        assert f'alt="{title}"' in html, title
    assert "pair_filter.clip_similarity_min = 0.8" in svg and "future.wobble_lt = 0.25" in svg
    assert "x1" not in re.findall(r'alt="future/things: (\w+)"', html)  # positions are not scores
    assert "Dropped by reason: jitter_max 1" in html
    # the funnel is stats.json's
    stats = json.loads((hand_run / "stats.json").read_text())
    assert 'data-funnel="future.rejected.wobble_lt">1<' in html
    assert f'data-funnel="records">{stats["records"]}<' in html
    # run facts: models with revision, GPU cost for the stage whose model is on cuda, log times
    assert "abc123" in html and "2026-03-01 10:00:00" in html and "2026-03-01 10:05:30" in html
    assert re.search(r"<td>pair_filter</td>.*?<td>cuda</td>\s*<td class=\"n\">333.3</td>", html, re.S)
    # a missing image and a record without pixels are said, not fatal
    assert "no images (rejected before any were made)" in html
    assert "images unreadable" in html
    assert "source: not_text" in html and "future: wobble_lt" in html


def test_localisation_numbers_are_eval_localizations(hand_run: Path) -> None:
    raws = [json.loads(line) for line in (hand_run / "records.jsonl").read_text().splitlines()[:-1]]
    expected = evaluate([_light(r, r["regions"]) for r in raws if r["truth"] or r["kind"] == "distractor"])
    html = build_report(hand_run).read_text()
    assert f"{expected['precision']:.3f}" in html and f"{expected['recall']:.3f}" in html
    assert expected["matches"] == 6 and expected["predicted"] == 9  # describe-dropped boxes still predict


def test_report_is_the_same_bytes_when_built_again(hand_run: Path, tmp_path: Path) -> None:
    first = build_report(hand_run, tmp_path / "one").parent
    second = build_report(hand_run, tmp_path / "two").parent
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for rel in files:
        if rel.suffix == ".html":  # the page names its own folder's links; they differ by one level
            continue
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel


def test_gallery_choice_depends_on_seed_and_ids_only() -> None:
    raws = [
        {
            "id": f"r{i}",
            "status": "kept" if i % 3 else "rejected",
            "rejected_by": "x",
            "reason": f"c{i % 2}: d",
        }
        for i in range(60)
    ]

    def chosen(seed: int, order: list[dict]) -> tuple[list[str], dict[str, list[str]]]:
        picker = GalleryPicker(seed, kept=5, per_reason=2)
        for raw in order:
            picker.offer(raw)
        return [r["id"] for r in picker.kept()], {
            g: [r["id"] for r in rs] for g, rs in picker.rejected().items()
        }

    shuffled = raws[:]
    random.Random(1).shuffle(shuffled)
    assert chosen(0, raws) == chosen(0, shuffled)
    assert chosen(0, raws) != chosen(1, raws)
    kept, rejected = chosen(0, raws)
    assert (
        len(kept) == 5 and set(rejected) == {"x: c0", "x: c1"} and all(len(v) == 2 for v in rejected.values())
    )


def test_thresholds_come_from_the_recipe() -> None:
    found = recipe_thresholds(RECIPE)
    assert [t.label for t in for_record_score(found, "pair_filter.clip_similarity")] == [
        "pair_filter.clip_similarity_min = 0.8"
    ]
    assert for_record_score(found, "future.clip_similarity") == []  # another stage's score
    assert [t.stage for t in for_unprefixed(found, "wobble")] == ["future"]
    assert all(t.score != "flag" for t in found)  # a boolean is not a threshold


def test_distinct_n_and_replacements() -> None:
    text = TextStats()
    for old, new, difference in [("cat", "dog", "a b a"), ("cat", "dog", "a b c"), ("car", "", "c")]:
        regions = [{"difference": difference, "rejected_by": None}]
        text.add({"caption_a": "one two", "edit": {"old": old, "new": new}, "regions": regions})
    summary = text.summary()
    assert summary["distinct_1"] == 3 / 7  # a b a | a b c | c: 3 distinct of 7 words
    assert summary["distinct_2"] == 3 / 4  # (a b) (b a) | (a b) (b c)
    assert summary["top_pairs"] == [("cat → dog", 2), ("car → (removed)", 1)]
    assert summary["categories"] == [("pet", 2), ("road vehicle", 1)] and summary["category_count"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "{tmp}/nothing"], "is not an imgdiff run directory"),
        (["report", "{run}", "--gallery", "-1"], "--gallery must be 0 or more"),
        (["report", "{run}", "--out", "{run}/records.jsonl"], "is a file, not a directory"),
    ],
)
def test_bad_input_is_one_line(
    hand_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    filled = [a.format(tmp=tmp_path, run=hand_run) for a in args]
    assert main(filled) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_a_run_without_stats_is_refused(hand_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (hand_run / "stats.json").unlink()
    assert main(["report", str(hand_run)]) == 2
    assert "no stats.json yet" in capsys.readouterr().err


def test_damaged_lines_are_shown_as_far_as_they_go(hand_run: Path) -> None:
    damaged = [
        {"id": 7, "status": "kept", "scores": [1, 2], "regions": {"box": 1}, "images": ["a"], "edit": "cat"},
        {"id": "x", "status": "kept", "scores": {"s.nan": float("nan"), "s.text": "high", "s.ok": 1.0}},
        {
            "id": "y",
            "status": "odd",
            "regions": [{"box": [1, 2], "scores": None}, "not a region"],
            "truth": [3],
        },
        ["not", "a", "record"],
        {"id": "z", "kind": None, "caption_a": 5, "regions": [{"box": [0, 0, 5, 5], "difference": 3}]},
    ]
    with (hand_run / "records.jsonl").open("a") as handle:
        handle.write("\n" + "\n".join(json.dumps(d) for d in damaged) + "\n")
    html = build_report(hand_run).read_text()
    assert 'alt="s.ok"' in html and 'alt="s.nan"' in html and 'alt="s.text"' not in html


def test_out_never_clears_a_folder_that_is_not_a_report(hand_run: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    (mine / "plots").mkdir(parents=True)
    (mine / "plots" / "keep.txt").write_text("mine")
    assert main(["report", str(hand_run), "--out", str(mine)]) == 2
    assert (mine / "plots" / "keep.txt").read_text() == "mine"
    assert main(["report", str(hand_run), "--out", str(tmp_path / "new"), "--gallery", "1"]) == 0
    assert main(["report", str(hand_run), "--out", str(tmp_path / "new"), "--gallery", "0"]) == 0  # its own
    assert not list((tmp_path / "new" / "gallery").glob("*.jpg"))  # the old thumbnails went with it
