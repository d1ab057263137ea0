"""`ordered_map`: a function applied to a stream in worker threads, results given back in the
stream's order, with only a bounded number of items in flight, so memory stays flat however long the
stream is. The work it runs (PNG decoding and deflating, numpy) releases the GIL, so threads use
every core without copying pixels between processes.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


def ordered_map(
    function: Callable[[In], Out], items: Iterable[In], workers: int, ahead: int
) -> Iterator[tuple[In, Out]]:
    """(item, function(item)) in the order of `items`; at most `ahead` items are submitted and not
    yet given back. `items` is read only as far as that window needs."""
    stream = iter(items)
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        pending: deque[tuple[In, Future[Out]]] = deque(
            (item, pool.submit(function, item)) for item in itertools.islice(stream, max(1, ahead))
        )
        while pending:
            item, future = pending.popleft()
            result = future.result()
            for following in itertools.islice(stream, 1):
                pending.append((following, pool.submit(function, following)))
            yield item, result
    finally:  # also when the consumer stops early or a worker raised: nothing left running
        pool.shutdown(wait=True, cancel_futures=True)
