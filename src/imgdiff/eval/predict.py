"""`imgdiff predict BENCH --models FILE --model NAME --out P.jsonl`: a `vl_generator` model entry
(transformers in-process, or `openai` on a server) answers a benchmark's items, in batches, into a
predictions file that the `eval` commands read.

Resume follows the run rule: the same command again asks only the items without an answer line.
Each batch's lines are appended in one write and fsynced after its answers come back, so a kill
loses at most the batch in hand. The header records what was asked (benchmark, task, prompt, model
entry, sampling); a rerun whose header differs refuses to mix answers (exit 2) unless `--fresh`.
An item whose images cannot be read gets a line with its `error` and an empty answer (scored as
unparseable), and the others go on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imgdiff.errors import UsageError
from imgdiff.eval.benchmarks import Benchmark, Item
from imgdiff.eval.predictions import PredictionsWriter, read_predictions


def load_entry(models_file: str, name: str | None) -> tuple[str, Any]:
    """The named `vl_generator` entry of a recipe or models file (its only one when unnamed)."""
    from imgdiff.models import ModelEntry
    from imgdiff.recipe import read_raw
    from imgdiff.settings import validate

    raw, where = read_raw(models_file)
    entries = raw.get("models")
    if not isinstance(entries, dict) or not entries:
        raise UsageError(f"{where}: no models: section")
    vision = [n for n, e in entries.items() if isinstance(e, dict) and e.get("role") == "vl_generator"]
    if name is None:
        if len(vision) != 1:
            raise UsageError(
                f"{where}: name the vl_generator entry with --model (found: {', '.join(vision)})"
            )
        name = vision[0]
    if name not in entries:
        from imgdiff.errors import did_you_mean

        raise UsageError(f"{where}: no model entry '{name}'{did_you_mean(name, entries)}")
    entry = validate(ModelEntry, entries[name], f"{where}: models.{name}")
    if entry.role != "vl_generator":  # type: ignore[attr-defined]
        raise UsageError(f"model '{name}' has role {entry.role}, needs vl_generator")  # type: ignore[attr-defined]
    return name, entry


def header_of(bench: Benchmark, name: str, entry: Any, max_new_tokens: int) -> dict[str, Any]:
    return {
        **bench.source,
        "task": bench.task,
        "prompt": bench.prompt_template,
        "model": {"name": name, **entry.fingerprint_fields()},
        "generation": {"max_new_tokens": max_new_tokens, "temperature": 0.0},
    }


def item_seed(item_id: str) -> int:
    """A seed from the item id alone (servers that sample honour it; greedy ignores it)."""
    return int.from_bytes(hashlib.sha256(item_id.encode()).digest()[:8], "big") >> 1


def predict(
    bench: Benchmark,
    out: Path,
    name: str,
    entry: Any,
    batch_size: int = 8,
    max_new_tokens: int = 128,
    fresh: bool = False,
    limit: int | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Answer the items of `bench` without an answer in `out`; returns counts
    {items, reused, asked, failed}."""
    from imgdiff.models import ModelPool
    from imgdiff.models.roles import Generation, VisionPrompt

    if batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    header = header_of(bench, name, entry, max_new_tokens)
    items = bench.items[:limit] if limit is not None else bench.items
    done = _answered(out, header, fresh)
    todo = [item for item in items if item.id not in done]
    counts = {"items": len(items), "reused": len(items) - len(todo), "asked": 0, "failed": 0}
    if not todo:
        return counts
    model = ModelPool({name: entry}).get(name)
    writer = PredictionsWriter(out, header)
    try:
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            lines, asked, prompts = _load(batch)
            if prompts:
                sampling = Generation(max_new_tokens, seeds=[item_seed(item.id) for item in asked])
                answers = model.generate([VisionPrompt(text, images) for text, images in prompts], sampling)
                for line, answer in zip([ln for ln in lines if "error" not in ln], answers, strict=True):
                    line["answer"] = answer
            writer.append(lines)
            counts["asked"] += len(asked)
            counts["failed"] += len(batch) - len(asked)
            if on_batch is not None:
                on_batch(start + len(batch), len(todo))
    finally:
        writer.close()
    return counts


def _load(batch: list[Item]) -> tuple[list[dict[str, Any]], list[Item], list[tuple[str, list[Any]]]]:
    """Answer lines in item order, the items that can be asked, and their (prompt, images)."""
    lines, asked, prompts = [], [], []
    for item in batch:
        line: dict[str, Any] = {"id": item.id, "answer": "", "prompt": item.prompt, **item.fields}
        try:
            images = item.load_images()
        except UsageError as exc:
            line["error"] = str(exc)
        else:
            line["size"] = [int(images[0].shape[1]), int(images[0].shape[0])]
            asked.append(item)
            prompts.append((item.prompt, images))
        lines.append(line)
    return lines, asked, prompts


def _answered(out: Path, header: dict[str, Any], fresh: bool) -> set[str]:
    """Ids already answered in `out` under the same header (none with `fresh`, which empties it)."""
    if fresh and out.exists():
        out.unlink()
    if not out.exists() or b"\n" not in out.read_bytes():
        return set()  # nothing, or a header cut short by a kill (the writer starts the file again)
    previous = read_predictions(out)
    old = {k: v for k, v in previous.header.items() if k != "imgdiff_predictions"}
    if old != header:
        changed = sorted(k for k in header.keys() | old.keys() if old.get(k) != header.get(k))
        raise UsageError(
            f"cannot resume '{out}': it was asked differently ({', '.join(changed)} changed); "
            "pass --fresh to start over, or write to another file"
        )
    return set(previous.items)
