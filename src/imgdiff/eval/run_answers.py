"""A run's kept pairs joined with the answers `predict run:DIR --task T` wrote about them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from imgdiff.errors import UsageError
from imgdiff.eval.captions import missing_message
from imgdiff.eval.predictions import read_predictions
from imgdiff.record import Record


def join(
    out: str | Path, pred: Path, task: str, allow_missing: bool
) -> tuple[list[Record], dict[str, dict[str, Any]]]:
    """The kept records that have an answer line, and the lines by id. Answers about ids the run
    does not keep fail; kept pairs without an answer are listed and fail unless `allow_missing`.
    Answers about one split of an export (`predict run:DIR --split S`) are joined with that split."""
    from imgdiff.eval.run_items import kept_records
    from imgdiff.store import load_finished_records as load_records

    predictions = read_predictions(pred)
    header = predictions.header
    if header.get("benchmark") != "run" or header.get("task") != task:
        raise UsageError(
            f"'{pred}' holds {header.get('benchmark')} {header.get('task')} answers, "
            f"not answers of `predict run:DIR --task {task}`"
        )
    if header.get("export_split") is not None:  # asked about one split of an export: scored on it
        kept, _folder = kept_records(Path(out), header["export_split"], Path(header["export"]))
    else:
        kept = [r for r in load_records(out) if r.status == "kept"]
    ids = {r.id for r in kept}
    only_pred = sorted(set(predictions.items) - ids)
    only_run = sorted(ids - set(predictions.items))
    if only_pred or (only_run and not allow_missing):
        message = missing_message(only_pred, only_run).replace("references", f"kept pairs of {out}")
        raise UsageError(message if not only_pred else message.split(" (pass")[0] + ": a different run?")
    return [r for r in kept if r.id in predictions.items], predictions.items
