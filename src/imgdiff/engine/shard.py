"""Which source items a run takes: the first `--limit` items, then its `--shard I/N` slice."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from imgdiff.errors import UsageError
from imgdiff.sources.base import Source


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        try:
            i, n = (int(x) for x in text.split("/"))
        except ValueError:
            raise UsageError(f"--shard '{text}': expected I/N, e.g. 0/4") from None
        if not 0 <= i < n:
            raise UsageError(f"--shard '{text}': need 0 <= I < N")
        return cls(i, n)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def select(source: Source, limit: int | None, shard: Shard | None) -> Iterator[tuple[int, Any]]:
    """(source index, raw item): the first `limit` items, then this shard's slice of them."""
    items = enumerate(source.items())
    if limit is not None:
        items = itertools.islice(items, limit)
    for index, raw in items:
        if shard is None or index % shard.count == shard.index:
            yield index, raw


def selected_count(source: Source, limit: int | None, shard: Shard | None) -> int | None:
    """How many items `select` yields, when the source knows its size cheaply."""
    total = source.count()
    if total is not None and limit is not None:
        total = min(total, limit)
    if total is not None and shard is not None:
        total = len(range(shard.index, total, shard.count))
    return total
