"""Exporters: finished runs into training-data formats. The driver is `imgdiff.export.driver`
(`EXPORTERS`, `export_run`); they are loaded on first use, so that importing the package (the
CLI's flags live in `export/cli_args.py`) stays as cheap as `imgdiff --help` must be."""

from __future__ import annotations

from typing import Any

__all__ = ["EXPORTERS", "MARKER", "export_run"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from imgdiff.export import driver

        return getattr(driver, name)
    raise AttributeError(f"module 'imgdiff.export' has no attribute '{name}'")
