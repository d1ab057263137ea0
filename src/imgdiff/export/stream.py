"""The samples of a run in canonical order, read one record at a time (never the whole run).

records.jsonl is written sorted by `Record.sort_key` (`RunStore.write_records`), so walking it in
file order and sorting only within each record gives the canonical order of `samples.canonical`.
Extra samples (types the records do not make by themselves) are merged in at their record's place.
A file out of order (not written by imgdiff) is one UsageError, before anything is written.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence

from imgdiff.errors import UsageError
from imgdiff.export.samples import Sample, canonical, samples_of_record
from imgdiff.store import RunStore


def run_samples(store: RunStore, extra: Sequence[Sample] = ()) -> Iterator[Sample]:
    """Every sample of the run's records and of `extra`, in canonical order."""
    return heapq.merge(_own(store), sorted(extra, key=canonical), key=canonical)


def _own(store: RunStore) -> Iterator[Sample]:
    previous = None
    for record in store.iter_records():
        key = record.sort_key()
        if previous is not None and key < previous:
            raise UsageError(
                f"{store.records_path}: record {record.id} is out of canonical order "
                "(imgdiff writes it sorted by source item; was it edited by hand?)"
            )
        previous = key
        yield from sorted(samples_of_record(record), key=canonical)
