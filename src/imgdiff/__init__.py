"""imgdiff: contrastive image-difference data (Img-Diff) for multimodal LLMs.

The Python API has the CLI's verbs: `imgdiff.run(recipe, out=...)`, `imgdiff.rethreshold(dir,
[...])`, `imgdiff.load_records(dir)`. Importing is cheap: heavy libraries load in `setup()`.
"""

from __future__ import annotations

from typing import Any

from imgdiff.version import __version__

__all__ = ["__version__", "load_records", "rethreshold", "run"]


def run(recipe: Any, out: Any, **options: Any) -> Any:
    """Run or resume a recipe (a file, a built-in name or a dict) into directory `out`."""
    from imgdiff.runner import run as _run

    return _run(recipe, out, **options)


def rethreshold(out: Any, overrides: list[str], **options: Any) -> Any:
    """Re-apply decisions of run `out` with new thresholds (`["stage.setting=value", ...]`)."""
    from imgdiff.runner import rethreshold as _rethreshold

    return _rethreshold(out, overrides, **options)


def load_records(out: Any) -> list[Any]:
    """The records of a run directory in canonical order."""
    from imgdiff.store import load_records as _load

    return _load(out)
