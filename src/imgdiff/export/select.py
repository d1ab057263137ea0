"""Which samples an export keeps: `where`, then `dedup`, then `max_per_object`, in that order,
each walking the samples in canonical order so the first of a kind is the one kept.

- `where`: the expression (export/where.py) over `Sample.fields()`.
- `dedup`: a sample whose answer text (case and spacing aside) an earlier sample already gave is
  dropped; so is every sample of a pair whose perceptual hashes (64-bit pHash of image a and of
  image b, `imagehash`) are both within `dedup_distance` bits of an earlier kept pair's.
  Near pairs are found through bands (pigeonhole: two 128-bit codes within d bits agree exactly on
  one of d + 1 bands), so the work grows with the run, not its square.
- `max_per_object N`: at most N samples per replaced or removed object (the edit's `old` phrase);
  samples whose pair names no object are not capped.

The selection is a stream: every sample comes out once with its verdict (kept or not), so the
driver can number the verdicts in canonical order. What it remembers is small: an 8-byte hash per
distinct answer, the codes of kept pairs, a counter per object; never the samples themselves.
Pair codes (decoding both images) are computed ahead in worker threads, only for pairs still in play.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from imgdiff.export.options import ExportOptions
from imgdiff.export.parallel import ordered_map
from imgdiff.export.samples import Sample
from imgdiff.export.where import parse
from imgdiff.record import Record

PairCode = Callable[[Record], int]  # a record -> the 128-bit perceptual code of its pair
Verdicts = Iterator[tuple[Sample, bool]]  # every sample, and whether it is still kept


class Selection:
    """`selection(samples)` streams (sample, kept); afterwards `dropped` says how many each filter
    dropped and `check()` rejects a `where` that names a field no sample has."""

    def __init__(self, options: ExportOptions, pair_code: PairCode) -> None:
        self.options = options
        self.pair_code = pair_code
        self.expression = parse(options.where) if options.where is not None else None
        self.names: set[str] = set()  # every field name the samples have, for `check`
        filters = ["where"] * bool(self.expression) + ["dedup_text", "dedup_pair"] * options.dedup
        self.dropped: dict[str, int] = dict.fromkeys(
            filters + ["max_per_object"] * (options.max_per_object is not None), 0
        )

    def __call__(self, samples: Iterable[Sample]) -> Verdicts:
        verdicts: Verdicts = ((sample, True) for sample in samples)
        if self.expression is not None:
            verdicts = self._where(verdicts)
        if self.options.dedup:
            verdicts = self._near_pairs(self._repeated_texts(verdicts))
        if self.options.max_per_object is not None:
            verdicts = self._capped(verdicts, self.options.max_per_object)
        return verdicts

    def check(self) -> None:
        if self.expression is not None and self.names:  # a run without samples has no fields to name
            self.expression.check_names(self.names)

    def _drop(self, name: str) -> bool:
        self.dropped[name] += 1
        return False

    def _where(self, verdicts: Verdicts) -> Verdicts:
        assert self.expression is not None
        for sample, kept in verdicts:
            fields = sample.fields()
            self.names.update(fields)
            yield sample, kept and (bool(self.expression(fields)) or self._drop("where"))

    def _repeated_texts(self, verdicts: Verdicts) -> Verdicts:
        seen: set[bytes] = set()
        for sample, kept in verdicts:
            if kept:
                text = " ".join(sample.answer.casefold().split())
                digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
                kept = digest not in seen or self._drop("dedup_text")
                seen.add(digest)
            yield sample, kept

    def _near_pairs(self, verdicts: Verdicts) -> Verdicts:
        near = NearCodes(self.options.dedup_distance)

        def code(group: list[tuple[Sample, bool]]) -> int | None:  # only pairs still in play
            return self.pair_code(group[0][0].record) if any(kept for _, kept in group) else None

        groups = (list(g) for _, g in itertools.groupby(verdicts, key=lambda v: v[0].record.id))
        workers = self.options.workers
        for group, pair in ordered_map(code, groups, workers, ahead=4 * workers):
            fresh = pair is None or near.add_if_far(pair)
            for sample, kept in group:
                yield sample, kept and (fresh or self._drop("dedup_pair"))

    def _capped(self, verdicts: Verdicts, cap: int) -> Verdicts:
        counts: Counter[str] = Counter()
        for sample, kept in verdicts:
            name = sample.object
            if kept and name is not None:
                kept = counts[name] < cap or self._drop("max_per_object")
                counts[name] += kept
            yield sample, kept


class NearCodes:
    """Kept 128-bit codes, indexed by band, to ask whether a new code is within `distance` bits of one."""

    def __init__(self, distance: int) -> None:
        self.distance = distance
        self.bands = distance + 1
        self.width = -(-128 // self.bands)
        self.index: dict[tuple[int, int], list[int]] = defaultdict(list)  # (band, its bits) -> codes

    def add_if_far(self, code: int) -> bool:
        """True, and the code kept, when no kept code is within `distance` bits of it."""
        mask = (1 << self.width) - 1
        keys = [(b, (code >> (b * self.width)) & mask) for b in range(self.bands)]
        if any(bin(code ^ other).count("1") <= self.distance for key in keys for other in self.index[key]):
            return False
        for key in keys:
            self.index[key].append(code)
        return True


def perceptual_code(a: np.ndarray, b: np.ndarray) -> int:
    """128 bits: the pHash of image a, then of image b."""
    import imagehash
    from PIL import Image

    bits = np.concatenate([imagehash.phash(Image.fromarray(x)).hash.ravel() for x in (a, b)])
    return int("".join("1" if v else "0" for v in bits), 2)
