"""`FileWriter`: the pictures of an export written and flushed to disk in background threads.

An export must have every file on disk before its folder is renamed into place (driver.py). Flushing
each picture after the last one is encoded makes the export wait for the disk at the end, with the
CPU idle (on the demo run a tenth of the export's time); writing and flushing each picture while the
next ones are encoded overlaps the two. The main thread only hands the bytes over, so it is free for
the writers' text. At most `pending` pictures wait at once, so memory stays flat, and a failed write
raises at the next hand-over (or at `close`), so the export fails as it did when it wrote in place.
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path


class FileWriter:
    def __init__(self, threads: int = 4, pending: int = 8) -> None:
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="export-files")
        self.pending = pending
        self.futures: deque[Future[None]] = deque()
        # made already (no mkdir call per picture); they hold only pictures, all on disk once close()
        # returns, so the driver's final flush skips them (a set of a few hundred, not of every file)
        self.folders: set[Path] = set()

    def write(self, path: Path, data: bytes) -> None:
        folder = path.parent
        if folder not in self.folders:
            folder.mkdir(parents=True, exist_ok=True)
            self.folders.add(folder)
        self.futures.append(self.pool.submit(_write_and_flush, path, data))
        while len(self.futures) > self.pending:
            self.futures.popleft().result()

    def close(self) -> None:
        """Wait for every write; raise the first that failed. Nothing is left running either way,
        so the caller may delete the folder after a failure."""
        try:
            while self.futures:
                self.futures.popleft().result()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def close_quietly(self) -> None:
        """After a failure elsewhere: stop, wait for what runs, drop what failed (the folder goes)."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.futures.clear()


def _write_and_flush(path: Path, data: bytes) -> None:
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
