"""The pairs of one split of a run's export, for `imgdiff predict run:DIR --split val`: a model
trained on an export's `train` split is asked about its `val` pairs, which share no source item
with `train` (export/split.py).

An export folder's marker keeps the options it was made with; the split is planned again from them
over the run's records (export/plan.py, the same pass the export made), so the pairs are exactly
those with a sample in that split of that export. Without `--export`, the run's export folders
(DIR/export/<format>) that have the split are used; they must agree on their options.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from imgdiff.errors import UsageError
from imgdiff.export.driver import MARKER, pair_code
from imgdiff.export.options import build_options
from imgdiff.export.plan import plan
from imgdiff.export.stream import run_samples
from imgdiff.store import RunStore


def split_pairs(run_dir: Path, split: str, export: Path | None = None) -> tuple[set[str], Path]:
    """The ids of the pairs with a sample in `split` of the export, and the export folder used."""
    folder, options = _export_options(Path(run_dir), split, export)
    store = RunStore(run_dir)
    planned = plan(run_samples(store), options, pair_code(store.root))
    chosen = planned.of_split(run_samples(store), split)
    return {sample.record.id for sample in chosen}, folder


def _export_options(run_dir: Path, split: str, export: Path | None) -> tuple[Path, Any]:
    if export is not None and _marker_options(export) is None:
        raise UsageError(
            f"'{export}' is not an export folder, or one made before exports kept their options: export again"
        )
    folders = [export] if export is not None else sorted(RunStore(run_dir).export_dir.glob("*/"))
    found: dict[Path, dict[str, Any]] = {}
    for folder in folders:
        options = _marker_options(folder)
        if options is not None and split in (options.get("split") or {}):
            found[folder] = options
    if not found:
        where = f"'{export}'" if export is not None else f"no export of '{run_dir}'"
        raise UsageError(
            f"{where} has no split '{split}' (export with --split, e.g. train=0.95,{split}=0.05, "
            "or name the export folder with --export)"
        )
    if len({json.dumps(o, sort_keys=True) for o in found.values()}) > 1:
        names = ", ".join(str(f) for f in found)
        raise UsageError(f"the exports {names} split '{split}' differently: name one with --export")
    folder, options = next(iter(found.items()))
    return folder, build_options(options, f"{folder / MARKER}")


def _marker_options(folder: Path) -> dict[str, Any] | None:
    """The options an export folder was made with; None when it is not one (or made before they
    were kept)."""
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    options = marker.get("options") if isinstance(marker, dict) else None
    return options if isinstance(options, dict) else None
