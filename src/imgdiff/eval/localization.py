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
    from imgdiff.store import load_finished_records as load_records

    records = load_records(out)
    if not any(r.truth for r in records) and not any(r.kind == "distractor" for r in records):
        raise UsageError(f"'{out}' has no ground truth to score (use the synthetic or copy_paste source)")
    return evaluate(records)


# -- a model's answers to `predict run:DIR --task locate` -------------------------------------------
#
# The prompt asks for one box, so the first box an answer holds is the prediction (the forms read
# are in `box_answers`). Over the kept non-distractor pairs with truth that have an answer:
# `iou` of a pair = the best IoU of that box with a truth box (0 when the answer has no box);
# `accuracy_iou50` = share of pairs with iou >= 0.5; `mean_iou` = mean iou over all those pairs,
# unparseable answers included as 0; `unparseable` = answers without a box. Overall and per kind.


def score_answers(records: list[Record], lines: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from imgdiff.eval.box_answers import parse_boxes

    per_kind: dict[str, list[float]] = {}
    unparseable: dict[str, int] = {}
    forms: dict[str, int] = {}
    no_truth = 0
    for record in records:
        if record.kind == "distractor" or not record.truth:
            no_truth += 1
            continue
        line = lines[record.id]
        width, height = line.get("size") or (0, 0)
        boxes, form = parse_boxes(str(line.get("answer", "")), int(width), int(height))
        unparseable.setdefault(record.kind, 0)
        if not boxes:
            unparseable[record.kind] += 1
        else:
            forms[form or ""] = forms.get(form or "", 0) + 1
        best = max((iou(boxes[0], t.box) for t in record.truth), default=0.0) if boxes else 0.0
        per_kind.setdefault(record.kind, []).append(best)
    every = [v for values in per_kind.values() for v in values]
    return {
        **_iou_scores(every, sum(unparseable.values())),
        "no_truth": no_truth,
        "box_forms": forms,
        "per_kind": {kind: _iou_scores(v, unparseable[kind]) for kind, v in sorted(per_kind.items())},
    }


def _iou_scores(ious: list[float], unparseable: int) -> dict[str, Any]:
    return {
        "accuracy_iou50": sum(v >= IOU_MIN for v in ious) / len(ious) if ious else None,
        "mean_iou": sum(ious) / len(ious) if ious else None,
        "pairs": len(ious),
        "unparseable": unparseable,
    }


def evaluate_answers(out: str | Path, pred: Path, allow_missing: bool = False) -> dict[str, Any]:
    from imgdiff.eval.run_answers import join

    records, lines = join(out, pred, "locate", allow_missing)
    return score_answers(records, lines)


def report(scores: dict[str, Any]) -> str:
    """Every number after its name (fractions, as the rest of this command prints)."""
    lines = []
    for key, value in scores.items():
        if key == "per_kind":
            lines.append("per kind:")
            for kind, values in value.items():
                lines.append(f"  {kind:<12} " + "  ".join(f"{k} {_shown(v)}" for k, v in values.items()))
        elif isinstance(value, dict):
            lines.append(f"{key:<22} " + (", ".join(f"{k}: {v}" for k, v in value.items()) or "none"))
        else:
            lines.append(f"{key:<22} {_shown(value)}")
    return "\n".join(lines)


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "none" if value is None else str(value)
