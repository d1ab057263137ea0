"""Pipeline calls that shrink on CUDA out-of-memory, for the `generate` methods.

A method serves its records in calls of `size` items. When a call runs out of GPU memory, `size`
is halved for the rest of the worker's life (and kept below the size that just failed, since a
last, smaller group may fail too) and the group goes again in smaller calls; a single item that
still does not fit is handed back to be rejected (`out_of_memory`), and the batch goes on. The
memory is released outside the `except` block, where no traceback holds the failed call's tensors.
Every `generate` method serves its calls through it (`p2p`'s `pairs_per_call`, `instruct`'s
`edits_per_call`).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

log = logging.getLogger("imgdiff")

Item = TypeVar("Item")


class ShrinkingCalls:
    """Runs `call(group)` on groups of at most `size` items, halving `size` on out-of-memory."""

    def __init__(self, size: int, what: str) -> None:
        self.size = size  # items per call; lowered for good on out-of-memory
        self.what = what  # for messages, e.g. "generate: edits_per_call"

    def run(
        self,
        items: Sequence[Item],
        call: Callable[[list[Item]], None],
        out_of_memory: Callable[[Item], None],
    ) -> None:
        """Serve every item: `call` on groups; `out_of_memory(item)` for one that fits in no call."""
        items = list(items)
        while items:
            size = self.size  # read each time: out-of-memory may have lowered it
            self._one(items[:size], call, out_of_memory)
            items = items[size:]

    def _one(
        self, group: list[Item], call: Callable[[list[Item]], None], out_of_memory: Callable[[Item], None]
    ) -> None:
        import torch

        failed = False
        try:
            call(group)
        except torch.cuda.OutOfMemoryError:
            failed = True
        if not failed:
            return
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if len(group) == 1:
            log.warning("%s: out of memory at 1 per call", self.what)
            out_of_memory(group[0])
            return
        self.size = max(1, min(self.size // 2, len(group) - 1))
        log.warning("%s: CUDA out of memory; lowered to %d per call", self.what, self.size)
        for start in range(0, len(group), self.size):
            self._one(group[start : start + self.size], call, out_of_memory)
