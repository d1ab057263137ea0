"""Score, then decide: changed thresholds re-apply decisions from stored scores; a looser decision
leaves the later stages' work pending, and the same run command then does exactly that work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import imgdiff
from conftest import pixel_recipe
from imgdiff.errors import UsageError
from imgdiff.record import Record
from imgdiff.stages import STAGES
from imgdiff.stages.base import Stage, StageSettings
from imgdiff.stages.pair_filter.pixel import PixelPairFilter


class TaggerSettings(StageSettings):
    copies: int = 2


class Tagger(Stage):
    """A test stage after pair_filter: fans each pair out into `copies` children with a score."""

    name = "tagger"
    method = "test"
    Settings = TaggerSettings
    calls: list[str] = []

    def __call__(self, records: list[Record]) -> list[Record]:
        out = []
        for record in records:
            Tagger.calls.append(record.id)
            for k in range(self.settings.copies):
                child = record.child(k)
                child.scores["tagger.k"] = float(k)
                out.append(child)
        return out


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setitem(STAGES, "tagger", {"test": Tagger})
    calls: list[str] = []
    original = PixelPairFilter.__call__

    def counting(stage: PixelPairFilter, records: list[Record]) -> list[Record]:
        calls.extend(r.id for r in records)
        return original(stage, records)

    monkeypatch.setattr(PixelPairFilter, "__call__", counting)
    Tagger.calls = []
    return calls


def _recipe(pairs: Path) -> dict:
    recipe = pixel_recipe(pairs)
    recipe["stages"].append({"tagger": {"method": "test"}})
    return recipe


def test_rethreshold_never_runs_scoring(tmp_path: Path, pairs_file: Path, counted: list[str]) -> None:
    run_dir = tmp_path / "run"
    imgdiff.run(pixel_recipe(pairs_file), run_dir)
    assert len(counted) == 24
    before = imgdiff.load_records(run_dir)
    counted.clear()
    imgdiff.rethreshold(run_dir, ["pair_filter.similarity_min=0.999"])
    assert counted == []
    after = imgdiff.load_records(run_dir)
    assert [r.scores for r in after] == [r.scores for r in before]
    assert sum(r.kept for r in after) < sum(r.kept for r in before)
    assert all(
        r.kept or r.reason.startswith(("similarity_min", "changed_area"))
        for r in after
        if r.rejected_by == "pair_filter"
    )


def test_changed_threshold_in_the_recipe_reapplies_decisions_only(tmp_path, pairs_file, counted) -> None:
    run_dir = tmp_path / "run"
    imgdiff.run(pixel_recipe(pairs_file), run_dir)
    counted.clear()
    result = imgdiff.run(pixel_recipe(pairs_file), run_dir, overrides=["pair_filter.similarity_min=1.0"])
    assert counted == []
    assert result.stats["kept"] == 0


def test_looser_threshold_marks_pending_work_and_run_does_exactly_it(tmp_path, pairs_file, counted) -> None:
    run_dir = tmp_path / "run"
    strict = ["pair_filter.changed_area_min=0.045"]
    first = imgdiff.run(_recipe(pairs_file), run_dir, overrides=strict)
    tagged = set(Tagger.calls)
    assert 0 < len(tagged) < 24

    result = imgdiff.rethreshold(run_dir, ["pair_filter.changed_area_min=0.0001"])
    newly = result.stats["pending_by_stage"]["tagger"]
    assert newly > 0 and result.stats["pending"] == newly
    assert result.stats["records"] == first.stats["records"] - newly  # pending ones are not final

    Tagger.calls, counted[:] = [], []
    final = imgdiff.run(_recipe(pairs_file), run_dir, overrides=[])  # the same command, no new sets
    assert counted == []
    assert len(Tagger.calls) == newly and not set(Tagger.calls) & tagged
    assert final.stats["pending"] == 0
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["decision_overrides"] == {"pair_filter.changed_area_min": "0.0001"}


def test_fan_out_children_have_derived_ids_and_canonical_order(tmp_path, pairs_file, counted) -> None:
    imgdiff.run(_recipe(pairs_file), tmp_path / "run", overrides=["batch_size=3"])
    records = imgdiff.load_records(tmp_path / "run")
    kids = [r for r in records if r.child_index]
    assert kids and all(r.id.endswith(f"-{r.child_index[-1]}") for r in kids)
    assert [r.sort_key() for r in records] == sorted(r.sort_key() for r in records)
    assert len({r.seed for r in kids}) == len(kids)


def test_rethreshold_refuses_a_score_defining_setting(tmp_path, pairs_file) -> None:
    imgdiff.run(pixel_recipe(pairs_file), tmp_path / "run")
    with pytest.raises(UsageError, match="not a decision setting"):
        imgdiff.rethreshold(tmp_path / "run", ["pair_filter.size=32"])
    with pytest.raises(UsageError, match="not an imgdiff run"):
        imgdiff.rethreshold(tmp_path / "nothing", ["pair_filter.similarity_min=0.5"])
