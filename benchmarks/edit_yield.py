"""How many captions the weight-free `edit` method turns into a valid single-object edit.

    python benchmarks/edit_yield.py [--captions ../shared/data/captions/coco_style_captions.json]
                                    [--coco-mini ../shared/data/coco-mini/captions.json] [--n-edits 1]

Runs `captions` (every caption: per_image null) -> `edit` (method lexicon) through `imgdiff.run` on
each caption set, once with the `paper` preset (our checks) and once with `reference` (only the
reference's keyword filter) on the same edits: the lexicon's proposals depend on the seeds, not on
the checks. Prints one JSON object: per set and pooled, the share of captions with at least one kept
edit under each preset, the rejection reasons of the paper run (records of the edit stage), and how
many edits the paper checks reject that the reference keeps. Since the lexicon's edits are valid by
construction, `failure_modes` then corrupts each kept edit the ways an LLM answer goes wrong (no
change, a second object changed, meta-talk, an object added beside the old one, a cut-off answer)
and gives the share of each that our checks and the reference's filter accept.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

import imgdiff
from imgdiff.language.articles import indefinite_article
from imgdiff.language.mentions import find_mentions
from imgdiff.language.swaps import replace, targets
from imgdiff.language.text import words
from imgdiff.record import Record
from imgdiff.stages.edit.validate import check_edit, reference_filter


def run(captions: Path, preset: str, n_edits: int, out: Path) -> list[Record]:
    recipe = {
        "seed": 0,
        "batch_size": 64,
        "source": {"type": "captions", "path": str(captions), "per_image": None},
        "stages": [{"edit": {"method": "lexicon", "preset": preset, "n_edits": n_edits}}],
    }
    imgdiff.run(recipe, out)
    return imgdiff.load_records(out)


def summary(records: list[Record]) -> dict:
    items = {r.source_index for r in records}
    valid = {r.source_index for r in records if r.kept}
    reasons = Counter(r.reason.code for r in records if r.rejected_by == "edit" and r.reason)
    return {
        "captions": len(items),
        "valid": len(valid),
        "share": round(len(valid) / max(len(items), 1), 4),
        "edits": sum(r.caption_b != "" for r in records),
        "rejections": dict(sorted(reasons.items())),
    }


def measure(sets: dict[str, Path], n_edits: int, root: Path) -> dict:
    result: dict = {}
    kept: list[Record] = []  # the paper run's valid edits, corrupted below
    started = time.perf_counter()
    for name, path in sets.items():
        runs = {
            preset: run(path, preset, n_edits, root / f"{name}-{preset}") for preset in ("paper", "reference")
        }
        paper = {r.id: r for r in runs["paper"]}
        only_reference = sum(r.kept and r.id in paper and not paper[r.id].kept for r in runs["reference"])
        result[name] = {preset: summary(records) for preset, records in runs.items()}
        result[name]["kept_by_reference_only"] = only_reference
        kept += [r for r in runs["paper"] if r.kept]
    result["failure_modes"] = failure_modes(kept)
    result["pooled"] = {
        preset: pooled([result[name][preset] for name in sets]) for preset in ("paper", "reference")
    }
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result


def corruptions(record: Record) -> dict[str, str]:
    """Wrong answers made from a valid edit, each as (edited caption) with the edit's old and new."""
    assert record.edit is not None
    a, b, new = record.caption_a, record.caption_b, record.edit.new
    out = {
        "no_change": a,
        "meta_talk": f"Sure, here is the edited caption: {b}",
        "added_not_replaced": f"{a.rstrip('. ')} and {indefinite_article(new)} {new}.",
        "cut_off": " ".join(b.split()[: max(1, len(b.split()) // 2)]),
    }
    mentions, named = find_mentions(b)
    for mention in [m for m in mentions if b[m.start : m.end].lower() != new.lower()]:
        found = targets(mention.obj, named, set(words(b)))  # an object the caption does not name yet
        if found:
            out["two_objects_changed"] = replace(b, mention, found[0])[0]
            break
    return out


def failure_modes(records: list[Record]) -> dict:
    counts: dict[str, Counter[str]] = {}
    for record in records:
        assert record.edit is not None
        for mode, edited in corruptions(record).items():
            tally = counts.setdefault(mode, Counter())
            tally["n"] += 1
            tally["ours"] += check_edit(record.caption_a, edited, record.edit.old, record.edit.new) is None
            tally["reference"] += reference_filter(edited) is None
    return {
        mode: {
            "n": c["n"],
            "accepted_ours": round(c["ours"] / c["n"], 4),
            "accepted_reference": round(c["reference"] / c["n"], 4),
        }
        for mode, c in counts.items()
    }


def pooled(parts: list[dict]) -> dict:
    reasons: Counter[str] = Counter()
    for part in parts:
        reasons.update(part["rejections"])
    captions, valid = sum(p["captions"] for p in parts), sum(p["valid"] for p in parts)
    return {
        "captions": captions,
        "valid": valid,
        "share": round(valid / max(captions, 1), 4),
        "edits": sum(p["edits"] for p in parts),
        "rejections": dict(sorted(reasons.items())),
    }


if __name__ == "__main__":
    shared = Path(__file__).resolve().parents[2] / "shared/data"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--captions", type=Path, default=shared / "captions/coco_style_captions.json")
    parser.add_argument("--coco-mini", type=Path, default=shared / "coco-mini/captions.json")
    parser.add_argument("--n-edits", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sets = {"coco_style": args.captions, "coco_mini": args.coco_mini}
        print(json.dumps(measure(sets, args.n_edits, Path(tmp)), indent=2))
