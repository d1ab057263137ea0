"""The exporter interface, and what every format shares: the export's context and the dataset card.

An exporter writes one folder from a stream of samples: `add(sample, split, picture)` for each
sample (its picture already encoded, once for all formats of the export call), then `finish()`.
The driver in `imgdiff.export` makes that folder appear atomically and skips the work when nothing
changed. The card carries the funnel, the resolved recipe, versions and the licences, because
licences travel with data (DESIGN.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from imgdiff.errors import UsageError
from imgdiff.export.files import FileWriter
from imgdiff.export.options import ExportOptions
from imgdiff.export.samples import Sample
from imgdiff.store import RunStore

# source type -> whose licence its images carry
SOURCE_LICENCES = {
    "pairs": "user-supplied images: the user's licence",
    "parquet": "the licence of the dataset it reads (see that dataset's card)",
    "captions": "the captions file's licence (MSCOCO captions: CC BY 4.0); the images are made by the "
    "diffusion model below, under its licence",
}


@dataclass
class ExportContext:
    """What every format of one export call shares."""

    run_dir: Path
    facts: dict[str, Any]  # run_facts(run_dir)
    options: ExportOptions
    extension: str  # of the pictures: png or jpg
    splits: dict[str, int]  # split name -> samples, in the order given (`train` alone without --split)
    pairs: int  # pairs with at least one sample
    columns: dict[str, Any] = field(default_factory=dict)  # every field name -> a non-null value (or None)
    types: dict[str, int] = field(default_factory=dict)  # sample type -> samples
    dropped: dict[str, int] = field(default_factory=dict)  # filter -> samples it dropped
    files: FileWriter | None = None  # writes and flushes pictures in the background (the driver's)

    @property
    def split_names(self) -> list[str]:
        return list(self.splits)

    def counts(self) -> dict[str, Any]:
        """The summary's counts; splits and drops only when options asked for them."""
        out: dict[str, Any] = {"pairs": self.pairs, "samples": sum(self.splits.values())}
        if self.options.split:
            out["splits"] = dict(self.splits)
        if self.dropped:
            out["dropped"] = dict(self.dropped)
        if set(self.types) - {"difference"}:
            out["types"] = dict(self.types)
        return out


class Exporter:
    format: ClassVar[str]  # the name in a recipe's `export:` list
    version: ClassVar[int] = 1  # bump when the output changes for the same records

    def __init__(self, to: Path, context: ExportContext) -> None:
        """`to` is an empty folder this exporter fills."""
        self.to = to
        self.context = context

    def add(self, sample: Sample, split: str, picture: bytes) -> None:
        """One sample of `split`, in canonical order; `picture` is its encoded image."""
        raise NotImplementedError

    def finish(self) -> dict[str, Any]:
        """Write what is left (data files, the card); return {format, pairs, samples, files, ...}."""
        raise NotImplementedError

    def picture_path(self, sample: Sample) -> str:
        """Where a sample's picture lies in the folder: named after the sample, so bytes depend only
        on the records."""
        return f"images/{sample.id[:2]}/{sample.id}.{self.context.extension}"

    def write_picture(self, sample: Sample, picture: bytes) -> str:
        rel = self.picture_path(sample)
        if self.context.files is not None:
            self.context.files.write(self.to / rel, picture)
        else:
            (self.to / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.to / rel).write_bytes(picture)
        return rel

    def write_card(self, sample_format: str, example: dict[str, Any] | None, loading: str | None) -> None:
        text = sample_format + (
            f" An example:\n\n```json\n{to_json(example).rstrip()}\n```" if example else ""
        )
        if example is None:
            text += " This export holds no samples."
        card = dataset_card(self.format, self.context.facts, self.context.counts(), text, loading)
        (self.to / "README.md").write_text(card, encoding="utf-8")


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


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
    return {**{k: meta.get(k) for k in keys}, "funnel": funnel, "complete": bool(stats.get("complete"))}


def dataset_card(
    fmt: str, facts: dict[str, Any], counts: dict[str, Any], sample_format: str, loading: str | None = None
) -> str:
    """README.md of an export folder: what it is, counts, funnel, format, licences, provenance."""
    recipe = facts["recipe"] or {}
    lines = [
        f"# Image-difference data, `{fmt}` format",
        "",
        "Img-Diff-style contrastive image-difference data (arXiv 2408.04594), made by imgdiff "
        f"{facts['imgdiff']}. Each sample shows a pair of images side by side (left | black bar | "
        "right) with a red box at the same place on both halves, and says what differs in the box."
        + (
            " A `choice` sample shows the pair without a box and asks a multiple-choice question, "
            "answered with the option's letter."
            if "choice" in counts.get("types", {})
            else ""
        ),
        "",
        "## Counts",
        "",
        f"- pairs: {counts['pairs']}",
        f"- samples: {counts['samples']}",
        *(f"- split `{name}`: {n} samples" for name, n in counts.get("splits", {}).items()),
        *(f"- dropped by `{name}`: {n} samples" for name, n in counts.get("dropped", {}).items()),
        *(f"- `{name}` samples: {n}" for name, n in counts.get("types", {}).items()),
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
        *(["## How to load it", "", loading, ""] if loading else []),
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
        if entry.get("revision"):
            where += f"@{entry['revision']}"
        lines.append(f"- model `{name}` (`{where}`): the licence on its model card")
    return lines
