"""`imgdiff eval localization DIR`: how well the kept regions find the true change.

Exactly as the issue defines it: truth for a replacement is the union box of the old and new
object's visible extent, for a removal the removed object's box (sources with ground truth store it
as `record.truth`); predictions are the boxes the `regions` stage kept (`record.regions`, whatever
`describe` did with them; a pair rejected before or by `regions` predicts nothing). Matching is
one-to-one and greedy by IoU, highest first, at IoU >= 0.5. Precision = matches / predicted boxes
and recall = matches / truth boxes, over the non-distractor pairs with truth; `mean_iou` is the mean
IoU of the matches; `distractor_rejection` is the share of distractors rejected by `pair_filter`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from imgdiff.boxes import iou
from imgdiff.errors import UsageError
from imgdiff.record import Record

IOU_MIN = 0.5


def match(predicted: list[list[float]], truth: list[list[float]]) -> list[float]:
    """IoUs of the one-to-one greedy matches at IoU >= 0.5, highest first."""
    pairs = sorted(
        ((iou(p, t), i, j) for i, p in enumerate(predicted) for j, t in enumerate(truth)),
        key=lambda item: (-item[0], item[1], item[2]),
    )
    used_p, used_t, matched = set(), set(), []
    for value, i, j in pairs:
        if value < IOU_MIN:
            break
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
            matched.append(value)
    return matched


def evaluate(records: list[Record]) -> dict[str, Any]:
    predicted = truths = 0
    matched: list[float] = []
    pairs = 0
    distractors = [r for r in records if r.kind == "distractor"]
    for record in records:
        if record.kind == "distractor" or not record.truth:
            continue
        pairs += 1
        boxes = [region.box for region in record.regions]  # empty if `regions` never kept any
        truth = [t.box for t in record.truth]
        predicted += len(boxes)
        truths += len(truth)
        matched += match(boxes, truth)
    rejected = sum(r.rejected_by == "pair_filter" for r in distractors)
    return {
        "precision": len(matched) / predicted if predicted else 0.0,
        "recall": len(matched) / truths if truths else 0.0,
        "mean_iou": sum(matched) / len(matched) if matched else 0.0,
        "pairs": pairs,
        "distractor_rejection": rejected / len(distractors) if distractors else None,
        "predicted": predicted,
        "truth": truths,
        "matches": len(matched),
        "distractors": len(distractors),
    }


def evaluate_dir(out: str | Path) -> dict[str, Any]:
    from imgdiff.store import load_records

    records = load_records(out)
    if not any(r.truth for r in records) and not any(r.kind == "distractor" for r in records):
        raise UsageError(f"'{out}' has no ground truth to score (use the synthetic or copy_paste source)")
    return evaluate(records)
