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
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable

import numpy as np

from imgdiff.export.options import ExportOptions
from imgdiff.export.samples import Sample
from imgdiff.export.where import parse
from imgdiff.record import Record

PairCodes = Callable[[list[Record]], dict[str, int]]  # records -> {id: 128-bit perceptual code}


def select(samples: list[Sample], options: ExportOptions, pair_codes: PairCodes) -> tuple[list[Sample], dict]:
    """The kept samples, and how many each filter dropped. `pair_codes` is called once, on the
    records still in play when near duplicates are looked for (hashing means decoding the pairs)."""
    dropped: dict[str, int] = {}
    if options.where is not None:
        expression = parse(options.where)
        rows = [s.fields() for s in samples]
        if rows:  # a run without samples has no fields to name
            expression.check_names({name for row in rows for name in row})
        kept = [s for s, row in zip(samples, rows, strict=True) if expression(row)]
        dropped["where"], samples = len(samples) - len(kept), kept
    if options.dedup:
        kept = drop_repeated_texts(samples)
        dropped["dedup_text"], samples = len(samples) - len(kept), kept
        codes = pair_codes(list({s.record.id: s.record for s in samples}.values()))
        kept = drop_near_pairs(samples, codes, options.dedup_distance)
        dropped["dedup_pair"], samples = len(samples) - len(kept), kept
    if options.max_per_object is not None:
        kept = cap_objects(samples, options.max_per_object)
        dropped["max_per_object"], samples = len(samples) - len(kept), kept
    return samples, dropped


def drop_repeated_texts(samples: list[Sample]) -> list[Sample]:
    seen: set[str] = set()
    kept = []
    for sample in samples:
        text = " ".join(sample.answer.casefold().split())
        if text not in seen:
            seen.add(text)
            kept.append(sample)
    return kept


def drop_near_pairs(samples: list[Sample], codes: dict[str, int], distance: int) -> list[Sample]:
    bands = distance + 1
    width = -(-128 // bands)
    index: dict[tuple[int, int], list[int]] = defaultdict(list)  # (band, its bits) -> kept codes
    verdict: dict[str, bool] = {}  # record id -> kept
    kept = []
    for sample in samples:
        record = sample.record
        if record.id not in verdict:
            code = codes[record.id]
            keys = [(b, (code >> (b * width)) & ((1 << width) - 1)) for b in range(bands)]
            near = any(bin(code ^ other).count("1") <= distance for key in keys for other in index[key])
            verdict[record.id] = not near
            if not near:
                for key in keys:
                    index[key].append(code)
        if verdict[record.id]:
            kept.append(sample)
    return kept


def cap_objects(samples: list[Sample], cap: int) -> list[Sample]:
    counts: Counter[str] = Counter()
    kept = []
    for sample in samples:
        name = sample.object
        if name is not None:
            if counts[name] >= cap:
                continue
            counts[name] += 1
        kept.append(sample)
    return kept


def perceptual_code(a: np.ndarray, b: np.ndarray) -> int:
    """128 bits: the pHash of image a, then of image b."""
    import imagehash
    from PIL import Image

    bits = np.concatenate([imagehash.phash(Image.fromarray(x)).hash.ravel() for x in (a, b)])
    return int("".join("1" if v else "0" for v in bits), 2)
