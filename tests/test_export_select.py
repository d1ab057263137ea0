"""--where, --dedup, --max-per-object and --split: exact counts on a run whose records are set by
hand (tests/export_data.py says what each pair holds), and the expression language's rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from export_data import DIFFERENCE_SAMPLES, make_run
from imgdiff.errors import UsageError
from imgdiff.export import export_run
from imgdiff.export.samples import DifferenceSample
from imgdiff.export.split import assign, split_of
from imgdiff.export.where import parse
from imgdiff.record import Record, Region


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("select"))


def _llava(run: Path, tmp_path: Path, **options: object) -> dict:
    return export_run(run, ["llava"], to=tmp_path, options=options)["llava"]


@pytest.mark.parametrize(
    ("expression", "samples"),
    [
        # similarity 0.0, 0.1, 0.2, 0.3 and even pairs: 0 and 2, two boxes each
        ('pair_filter.similarity < 0.35 and kind == "replacement"', 4),
        # removals 1, 3, 5, 7 plus the dogs 3, 4
        ('kind == "removal" or edit.old == "dog"', 10),
        # no edit: pairs 5 and 7 (null is in no list)
        ('not (edit.old in ["cat", "dog"])', 4),
        ("region.area >= 0.1", 7),  # each pair's second box
        ("edit.old == null and region.index == 0", 2),
        ("pair_filter.similarity > 'a'", 0),  # a number and a text never order
    ],
)
def test_where_keeps_exactly_the_matching_samples(
    run: Path, tmp_path: Path, expression: str, samples: int
) -> None:
    summary = _llava(run, tmp_path, where=expression)
    assert summary["samples"] == samples
    assert summary["dropped"] == {"where": DIFFERENCE_SAMPLES - samples}


def test_max_per_object_caps_each_object_and_leaves_unnamed_ones(run: Path, tmp_path: Path) -> None:
    # cat: 6 samples -> 3, dog: 4 -> 3, no object (pairs 5, 7): 4 stay
    assert _llava(run, tmp_path, max_per_object=3)["samples"] == 10
    assert _llava(run, tmp_path / "one", max_per_object=1)["samples"] == 6


def test_dedup_drops_repeated_answers_and_near_duplicate_pairs(run: Path, tmp_path: Path) -> None:
    summary = _llava(run, tmp_path, dedup=True)
    # pair 3's first answer repeats pair 1's; pair 7 has pair 0's images (both its samples go)
    assert summary["dropped"] == {"dedup_text": 1, "dedup_pair": 2}
    assert summary["samples"] == 11 and summary["pairs"] == 6


def test_filters_apply_in_order_where_dedup_cap(run: Path, tmp_path: Path) -> None:
    summary = _llava(run, tmp_path, where='kind == "removal"', dedup=True, max_per_object=1)
    # removals 1, 3, 5, 7 (8 samples); dedup: pair 3's repeat (1) and pair 7 is near pair 0, which
    # `where` dropped already, so it stays; cap 1: cat (pair 1) 2 -> 1, dog (pair 3) 1 -> 1
    assert summary["dropped"] == {"where": 6, "dedup_text": 1, "dedup_pair": 0, "max_per_object": 1}
    assert summary["samples"] == 6


def test_split_counts_and_files(run: Path, tmp_path: Path) -> None:
    summary = _llava(run, tmp_path, split={"train": 0.5, "val": 0.5})
    assert summary["splits"] == {"train": 10, "val": 4}  # 5 and 2 pairs: decided by the ids alone
    assert sorted(p.name for p in (tmp_path / "llava").glob("[!.]*.json")) == ["train.json", "val.json"]
    everything = _llava(run, tmp_path / "all", split={"train": 1.0})
    assert everything["splits"] == {"train": DIFFERENCE_SAMPLES}


def _sample(record_id: str, index: int) -> DifferenceSample:
    record = Record(
        id=record_id, source_index=0, seed=0, regions=[Region(box=[0, 0, 1, 1], source="diff")] * 3
    )
    return DifferenceSample(record, index)


def test_children_of_one_source_item_never_straddle_splits() -> None:
    shares = {"train": 0.5, "val": 0.3, "test": 0.2}
    parents = [f"{i:012x}" for i in range(200)]
    samples = [_sample(f"{p}-{k}", j) for p in parents for k in range(3) for j in range(2)]
    by_split = assign(samples, shares)
    assert list(by_split) == ["train", "val", "test"]
    for p in parents:
        assert (
            len({name for name, items in by_split.items() for s in items if s.record.id.startswith(p)}) == 1
        )
    sizes = {name: len(items) / len(samples) for name, items in by_split.items()}
    assert all(abs(sizes[n] - shares[n]) < 0.1 for n in shares)
    # adding items never moves an old one
    assert all(split_of(p, shares) == split_of(p, shares) for p in parents)
    assert assign(samples[:30], shares)["val"] == [s for s in by_split["val"] if s in samples[:30]]


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("kind ==", 8),
        ("(a < 1", 7),
        ("a < 1 b", 7),
        ("a = 1", 3),
        ("kind == 'x' and", 16),
        ("", 1),
        ("a in [1,", 9),
        ("a < 1 # c", 7),
    ],
)
def test_a_syntax_error_names_its_column(text: str, column: int) -> None:
    with pytest.raises(UsageError, match=f"syntax error at column {column}:"):
        parse(text)


def test_expressions_evaluate_without_eval() -> None:
    row = {"kind": "removal", "s.x": 0.5, "n": None, "tags": ["a", "b"]}
    assert parse('kind == "removal" and s.x <= 0.5')(row)
    assert parse("not s.x > 0.5 or n < 1")(row)
    assert not parse("n < 1")(row) and parse("n == null")(row)
    assert parse("'a' in tags and 'c' not in tags and kind in ['removal', 'replacement']")(row)
    assert parse("s.x >= -1e-3 and true and not false")(row)
    assert parse('kind == "rem\\"oval" or kind != "x"')(row)
    with pytest.raises(UsageError, match="no field 'knd' \\(did you mean 'kind'\\?\\)"):
        parse("knd == 1").check_names(row)
    assert parse("__import__ == 1").names == {"__import__"}  # a name, looked up in the row, nothing else
