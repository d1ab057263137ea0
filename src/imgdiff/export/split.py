"""`--split train=0.95,val=0.05`: each sample's split, from its source item's id alone.

The id is hashed to a number u in [0, 1); the splits take consecutive stretches of [0, 1) in the
order given, each as wide as its share. So the assignment does not depend on the order, the other
samples or the run's size (adding items never moves an old one), and all samples of one source
item (the fan-out children of one caption, the boxes of one pair) land in the same split, so no
pair leaks between train and val. Shares hold in expectation, not exactly, on small runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from imgdiff.export.samples import Sample

DEFAULT = "train"  # the one split of an export without --split (the name `datasets` expects)


def unit(group: str) -> float:
    """A number in [0, 1) drawn from the group's id, the same on every machine."""
    digest = hashlib.sha256(f"imgdiff-split:{group}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_names(shares: dict[str, float] | None) -> list[str]:
    """Every split of an export, in the order given (`train` alone without --split)."""
    return list(shares or {DEFAULT: 1.0})


def split_of(group: str, shares: dict[str, float] | None) -> str:
    if not shares:
        return DEFAULT
    u, edge = unit(group), 0.0
    names = list(shares)
    for name in names:
        edge += shares[name]
        if u < edge:
            return name
    return names[-1]  # the shares' float sum may stop a hair below 1


def assign(samples: Sequence[Sample], shares: dict[str, float] | None) -> dict[str, list[Sample]]:
    """split name -> its samples in the given order; every split named, even an empty one."""
    out: dict[str, list[Sample]] = {name: [] for name in split_names(shares)}
    for sample in samples:
        out[split_of(sample.group, shares)].append(sample)
    return out
