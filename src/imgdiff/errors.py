"""The one exception type that means "the user's input is wrong" (CLI exit code 2)."""

from __future__ import annotations

import difflib
import errno
from collections.abc import Iterable


class UsageError(Exception):
    """Bad usage or bad input: the CLI prints the message on one line and exits with code 2."""


def did_you_mean(name: str, valid: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the nearest valid name, or the list of valid names."""
    valid = sorted(valid)
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
    if close:
        return f" (did you mean '{close[0]}'?)"
    if valid:
        return f" (valid: {', '.join(valid)})"
    return ""


# What the user can do about an error the machine gave; finished work is always on disk (parts are
# appended batch by batch, every other file is renamed into place whole).
_HINTS = {
    errno.ENOSPC: "the disk is full: free space, then run the same command to resume",
    errno.EDQUOT: "the disk quota is used up: free space, then run the same command to resume",
    errno.EFBIG: "the file-size limit was reached (ulimit -f): lift it, then run the same command to resume",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "not permitted",
    errno.ENOENT: "no such file or directory (deleted or moved since?)",
}


def os_error_line(exc: OSError) -> str:
    """One line for an OSError: the path, what happened and what to do; finished work is kept."""
    where = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None) or "a file"
    hint = _HINTS.get(exc.errno or 0, exc.strerror or str(exc))
    kept = "; finished work is on disk" if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) else ""
    return f"{where}: {hint}{kept}"
