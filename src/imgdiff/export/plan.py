"""The first of an export's two passes: where every sample goes, decided before any file is written.

One pass over the samples (records read one at a time; no picture rendered, pairs decoded only when
`--dedup` hashes them) gives every sample a label, in canonical order: 0 when dropped, else 1 + the
index of its split. It also gathers what writers need before their first row: the samples per
split, the pairs, the sample types, what each filter dropped, and the columns (every field name with
a non-null value that types it). The labels take 2 bytes a sample; nothing else grows with the run.
The driver's second pass reads the samples again, split by split, and keeps the labelled ones.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from imgdiff.export.options import ExportOptions
from imgdiff.export.samples import Sample
from imgdiff.export.select import PairCode, Selection
from imgdiff.export.split import split_names, split_of


@dataclass
class Plan:
    labels: array  # per sample in canonical order: 0 dropped, else 1 + its split's index
    splits: dict[str, int]  # split name -> samples, in the order given
    pairs: int  # pairs with at least one kept sample
    types: dict[str, int]  # sample type -> kept samples
    dropped: dict[str, int]  # filter -> samples it dropped
    columns: dict[str, Any]  # every field name of the kept samples -> a non-null value (or None)

    def of_split(self, samples: Iterable[Sample], split: str) -> Iterator[Sample]:
        """The kept samples of `split`, from the same samples, in the same order, as planned."""
        label = 1 + list(self.splits).index(split)
        return (s for s, mark in zip(samples, self.labels, strict=True) if mark == label)


def plan(samples: Iterable[Sample], options: ExportOptions, pair_code: PairCode) -> Plan:
    selection = Selection(options, pair_code)
    names = split_names(options.split)
    labels = array("H")
    splits = dict.fromkeys(names, 0)
    types: Counter[str] = Counter()
    columns: dict[str, Any] = {}
    pairs, last_pair = 0, None
    for sample, kept in selection(samples):
        if not kept:
            labels.append(0)
            continue
        split = split_of(sample.group, options.split)
        labels.append(1 + names.index(split))
        splits[split] += 1
        types[sample.type] += 1
        if sample.record.id != last_pair:  # a pair's samples are consecutive in canonical order
            pairs, last_pair = pairs + 1, sample.record.id
        for name, value in sample.fields().items():
            if columns.get(name) is None:
                columns[name] = value
    selection.check()
    return Plan(labels, splits, pairs, dict(types), dict(selection.dropped), columns)
