"""The exporter interface, and the parts every format shares: which samples, and the dataset card.

An exporter fills one folder (`export(run_dir, records, to)`); the driver in `imgdiff.export` makes
that folder appear atomically and skips the work when nothing changed. The card carries the funnel,
the resolved recipe, versions and the licences, because licences travel with data (DESIGN.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import yaml

from imgdiff.errors import UsageError
from imgdiff.record import Record, Region
from imgdiff.store import RunStore

# source type -> whose licence its images carry
SOURCE_LICENCES = {
    "pairs": "user-supplied images: the user's licence",
    "captions": "the captions file's licence (MSCOCO captions: CC BY 4.0); the images are made by the "
    "diffusion model below, under its licence",
}


class Exporter:
    format: ClassVar[str]  # the name in a recipe's `export:` list
    version: ClassVar[int] = 1  # bump when the output changes for the same records

    def export(self, run_dir: Path, records: list[Record], to: Path) -> dict[str, Any]:
        """Write the dataset into the empty folder `to`; return {format, samples, pairs, files}."""
        raise NotImplementedError


def samples_of(record: Record) -> list[tuple[int, Region]]:
    """(index in record.regions, region) of every box that makes a sample: kept and described."""
    if not record.kept:
        return []
    return [(k, r) for k, r in enumerate(record.regions) if r.rejected_by is None and r.difference]


def run_facts(run_dir: Path) -> dict[str, Any]:
    """What the card says about the run, from run.json and stats.json; nothing that varies per rerun."""
    try:
        store = RunStore(run_dir)
        meta = json.loads(store.run_json.read_text(encoding="utf-8"))
        stats = json.loads(store.stats_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"'{run_dir}' is not a finished imgdiff run: {exc}") from None
    funnel = [
        {"stage": s["stage"], "in": s["in"], "kept": s["kept"], "rejected": s["rejected"]}
        for s in stats.get("stages", [])
    ]
    keys = ("imgdiff", "recipe", "versions", "git_revision")
    return {**{k: meta.get(k) for k in keys}, "funnel": funnel}


def dataset_card(fmt: str, facts: dict[str, Any], counts: dict[str, int], sample_format: str) -> str:
    """README.md of an export folder: what it is, counts, funnel, format, licences, provenance."""
    recipe = facts["recipe"] or {}
    lines = [
        f"# Image-difference data, `{fmt}` format",
        "",
        "Img-Diff-style contrastive image-difference data (arXiv 2408.04594), made by imgdiff "
        f"{facts['imgdiff']}. Each sample shows a pair of images side by side (left | black bar | "
        "right) with a red box at the same place on both halves, and says what differs in the box.",
        "",
        "## Counts",
        "",
        f"- pairs: {counts['pairs']}",
        f"- samples: {counts['samples']}",
        "",
        "## Funnel",
        "",
        "| step | in | kept | rejected (by reason) |",
        "|---|---:|---:|---|",
        *(
            f"| {s['stage']} | {s['in']} | {s['kept']} | "
            f"{', '.join(f'{code}: {n}' for code, n in sorted(s['rejected'].items()))} |"
            for s in facts["funnel"]
        ),
        "",
        "## Sample format",
        "",
        sample_format,
        "",
        "## Licences",
        "",
        "The licences of the sources and models named in the recipe apply.",
        "",
        *licence_lines(recipe),
        "",
        "## Recipe",
        "",
        "```yaml",
        yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True).rstrip(),
        "```",
        "",
        "## Provenance",
        "",
        f"- git revision: {facts['git_revision'] or 'unknown'}",
        *(f"- {name}: {version}" for name, version in (facts["versions"] or {}).items()),
    ]
    return "\n".join(lines) + "\n"


def licence_lines(recipe: dict[str, Any]) -> list[str]:
    """One line per source and model of the recipe, saying whose licence applies."""
    source = (recipe.get("source") or {}).get("type", "unknown")
    licence = SOURCE_LICENCES.get(source, "see the licence of the data it reads")
    lines = [f"- source `{source}`: {licence}"]
    for name, entry in (recipe.get("models") or {}).items():
        where = entry.get("id") or entry.get("path") or entry.get("model") or name
        lines.append(f"- model `{name}` (`{where}`): the licence on its model card")
    return lines
