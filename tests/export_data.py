"""A small finished run whose records are set by hand, so every export count is known by design.

8 pairs from the `pairs` source (pair 7 has exactly pair 0's images: a near duplicate); pair 6 is
rejected. Every other pair has two described boxes, so 14 difference samples:
- kind: replacement for even pairs, removal for odd ones;
- edit.old: "cat" for pairs 0-2, "dog" for 3-4, no edit for 5 and 7;
- score pair_filter.similarity = i / 10;
- answers are unique except pair 3's first box, which repeats pair 1's (case and spacing aside).
`choice_samples` adds two multiple-choice samples (pairs 0 and 1).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import imgdiff
from imgdiff.export.samples import ChoiceSample
from imgdiff.record import Edit, Region
from imgdiff.store import RunStore
from pairs_data import write_pairs

PAIRS = 8
DIFFERENCE_SAMPLES = 14


def make_run(tmp: Path) -> Path:
    path = write_pairs(tmp / "pairs", PAIRS, size=64, seed=3)
    for side in ("a", "b"):
        shutil.copy(path.parent / f"0000_{side}.png", path.parent / f"0007_{side}.png")
    out = tmp / "run"
    imgdiff.run({"seed": 0, "source": {"type": "pairs", "path": str(path)}}, out)
    records = imgdiff.load_records(out)
    for i, record in enumerate(records):
        record.kind = "replacement" if i % 2 == 0 else "removal"
        record.edit = Edit(old="cat", new="dog") if i < 3 else Edit(old="dog", new="") if i < 5 else None
        record.scores = {"pair_filter.similarity": i / 10, "regions.candidates": 2.0}
        first = "The square became a circle." if i in (1, 3) else f"Box one of pair {i} changed."
        if i == 3:
            first = "  the SQUARE became a circle. "
        record.regions = [
            Region(box=[4, 4, 20, 20], source="diff", scores={"area": 0.06}, difference=first),
            Region(
                box=[30, 30, 50, 60], source="diff", scores={"area": 0.15}, difference=f"Pair {i}, box two."
            ),
        ]
    records[6].reject("describe", "no_regions: none accepted")
    RunStore(out).write_records(records)
    return out


def choice_samples(run: Path) -> list[ChoiceSample]:
    records = imgdiff.load_records(run)
    return [
        ChoiceSample(
            records[i],
            "Which object is in the left image but not in the right one?",
            ("a cat", "a dog", "a cup"),
            i,
        )
        for i in (0, 1)
    ]
