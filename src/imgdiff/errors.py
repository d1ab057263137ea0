"""The one exception type that means "the user's input is wrong" (CLI exit code 2)."""

from __future__ import annotations

import difflib
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
