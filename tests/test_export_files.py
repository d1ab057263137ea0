"""The export's background picture writer: every byte on disk, failures raised, memory bounded."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pytest

from imgdiff.export import files as files_module
from imgdiff.export.files import FileWriter


def test_every_picture_is_written_and_flushed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flushed: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(files_module.os, "fsync", lambda fd: (flushed.append(fd), real_fsync(fd)))
    writer = FileWriter(threads=3, pending=2)
    expected = {tmp_path / f"images/{n % 4:02d}/{n}.png": bytes([n]) * (1000 + n) for n in range(20)}
    for path, data in expected.items():
        writer.write(path, data)
    writer.close()
    assert {p: p.read_bytes() for p in expected} == expected
    assert len(flushed) == 20 and writer.folders == {path.parent for path in expected}


def test_a_failed_write_raises_and_nothing_keeps_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = files_module._write_and_flush

    def failing(path: Path, data: bytes) -> None:
        if path.name == "3.png":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data)

    monkeypatch.setattr(files_module, "_write_and_flush", failing)
    writer = FileWriter(threads=2, pending=100)
    for n in range(6):
        writer.write(tmp_path / f"{n}.png", b"x")
    with pytest.raises(OSError) as raised:
        writer.close()
    assert raised.value.errno == errno.ENOSPC
    assert not [t for t in threading.enumerate() if t.name.startswith("export-files")]


def test_at_most_pending_pictures_wait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gate, most = threading.Event(), [0]
    writer = FileWriter(threads=1, pending=3)
    real = files_module._write_and_flush

    def slow(path: Path, data: bytes) -> None:
        gate.wait(5)
        real(path, data)

    monkeypatch.setattr(files_module, "_write_and_flush", slow)
    releaser = threading.Timer(0.2, gate.set)
    releaser.start()
    for n in range(10):
        writer.write(tmp_path / f"{n}.png", b"y")
        most[0] = max(most[0], len(writer.futures))
    writer.close()
    assert most[0] <= 3 and len(list(tmp_path.glob("*.png"))) == 10
