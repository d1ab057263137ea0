"""Exporters: finished runs into training-data formats (`export: [llava, ...]` in a recipe).

`EXPORTERS` maps a format name to its exporter class; the recipe loader accepts exactly these names.
"""

from __future__ import annotations

from typing import Any

EXPORTERS: dict[str, Any] = {}
