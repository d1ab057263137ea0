"""`imgdiff eval captions`: BLEU-1..4, METEOR, ROUGE-L and CIDEr-D of difference captions, x100.

The numbers are the COCO caption evaluation code's (`pycocoevalcap`), which is what Img-Diff and
the Spot-the-Diff / Image-Edit-Request papers report: its PTB tokenizer (lower-cased, punctuation
dropped) on both sides, then its scorers, one prediction per pair against all that pair's
references. Its `Cider` scorer is CIDEr-D (clipped n-gram counts, Gaussian length penalty with
sigma 6, document frequencies from the evaluated references), so it is reported under that name.
BLEU is corpus-level with the closest reference length, as `pycocoevalcap` computes it.

The PTB tokenizer and METEOR run on Java. Without `java` on the PATH the command still gives BLEU,
ROUGE-L and CIDEr-D with the regex tokenizer (`regex_tokenize`: lower-case, words are runs of
letters and digits, everything else separates them: "don't" -> "don t" where PTB gives "do n't"),
reports METEOR as unavailable and says which tokenizer ran; such numbers are close to, not equal
to, the PTB ones.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imgdiff.errors import UsageError
from imgdiff.eval.caption_formats import Sentences, one_prediction, read_captions

# The metric names, in the order they are printed (pycocoevalcap's own order).
METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D")
TOKENIZERS = ("auto", "ptb", "regex")
_WORD = re.compile(r"[^\W_]+")


def java_available() -> bool:
    return shutil.which("java") is not None


def regex_tokenize(text: str) -> str:
    """The Java-free tokenizer: lower-case words (runs of letters and digits) joined by spaces."""
    return " ".join(_WORD.findall(text.lower()))


def ptb_tokenize(sentences: Sentences) -> Sentences:
    """pycocoevalcap's PTB tokenizer (Stanford CoreNLP on Java) over `{id: [sentences]}`."""
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    ids = list(sentences)
    tokenized = PTBTokenizer().tokenize({i: [{"caption": s} for s in sentences[i]] for i in ids})
    return {i: tokenized.get(i, []) for i in ids}


def pick_tokenizer(name: str) -> str:
    if name not in TOKENIZERS:
        raise UsageError(f"unknown tokenizer '{name}' (valid: {', '.join(TOKENIZERS)})")
    if name == "auto":
        return "ptb" if java_available() else "regex"
    if name == "ptb" and not java_available():
        raise UsageError("the PTB tokenizer needs Java ('java' is not on the PATH); use --tokenizer regex")
    return name


def score(refs: Sentences, preds: Sentences, meteor: bool = True) -> dict[str, float | None]:
    """pycocoevalcap's scorers on tokenized `{id: [sentences]}` (one prediction per id), x100.
    METEOR is None when `meteor` is False (no Java)."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    bleu, _ = Bleu(4).compute_score(refs, preds, verbose=0)
    scores: dict[str, float | None] = {f"BLEU-{n + 1}": 100 * bleu[n] for n in range(4)}
    scores["METEOR"] = 100 * _meteor(refs, preds) if meteor else None
    scores["ROUGE-L"] = 100 * float(Rouge().compute_score(refs, preds)[0])
    scores["CIDEr-D"] = 100 * float(Cider().compute_score(refs, preds)[0])
    return scores


def _meteor(refs: Sentences, preds: Sentences) -> float:
    from pycocoevalcap.meteor.meteor import Meteor

    scorer = Meteor()
    try:
        return float(scorer.compute_score(refs, preds)[0])
    finally:
        del scorer  # its __del__ stops the Java process now, not at interpreter exit


def evaluate(
    pred_path: Path, refs_path: Path, allow_missing: bool = False, tokenizer: str = "auto"
) -> dict[str, Any]:
    """Scores of a predictions file against a references file; ids on one side only are listed and
    fail unless `allow_missing` (then the ids on both sides are scored)."""
    preds, pred_format = read_captions(pred_path)
    refs, refs_format = read_captions(refs_path)
    only_pred = sorted(set(preds) - set(refs))
    only_refs = sorted(set(refs) - set(preds))
    if (only_pred or only_refs) and not allow_missing:
        raise UsageError(missing_message(only_pred, only_refs))
    ids = [i for i in refs if i in preds]
    if not ids:
        raise UsageError(f"no id is both in '{pred_path}' and in '{refs_path}'")
    no_refs = [i for i in ids if not any(s.strip() for s in refs[i])]
    if no_refs:
        raise UsageError(f"'{refs_path}': {len(no_refs)} id(s) have no reference sentence, e.g. {no_refs[0]}")
    return {
        **score_sentences({i: preds[i] for i in ids}, {i: refs[i] for i in ids}, tokenizer),
        "formats": {"predictions": pred_format, "references": refs_format},
        "only_in_predictions": only_pred,
        "only_in_references": only_refs,
    }


def score_sentences(preds: Sentences, refs: Sentences, tokenizer: str = "auto") -> dict[str, Any]:
    """Tokenize and score predictions against references with the same ids."""
    chosen = pick_tokenizer(tokenizer)
    tokenize: Callable[[Sentences], Sentences] = (
        ptb_tokenize
        if chosen == "ptb"
        else lambda s: {i: [regex_tokenize(x) for x in v] for i, v in s.items()}
    )
    ids = list(refs)
    # One PTB pass over both sides (one Java start); ids prefixed so the sides cannot collide.
    both = tokenize({**{f"r{i}": refs[i] for i in ids}, **{f"p{i}": [one_prediction(preds[i])] for i in ids}})
    scores = score({i: both[f"r{i}"] for i in ids}, {i: both[f"p{i}"] for i in ids}, meteor=chosen == "ptb")
    return {
        **scores,
        "pairs": len(ids),
        "references": sum(len(refs[i]) for i in ids),
        "tokenizer": chosen,
        "meteor": "ran" if chosen == "ptb" else "unavailable: needs Java (the PTB tokenizer too)",
    }


def missing_message(only_pred: list[str], only_refs: list[str]) -> str:
    parts = []
    if only_pred:
        parts.append(f"{len(only_pred)} id(s) only in the predictions: {_some(only_pred)}")
    if only_refs:
        parts.append(f"{len(only_refs)} id(s) only in the references: {_some(only_refs)}")
    return "; ".join(parts) + " (pass --allow-missing to score the ids on both sides)"


def _some(ids: list[str], n: int = 10) -> str:
    return ", ".join(ids[:n]) + (f", ... ({len(ids) - n} more)" if len(ids) > n else "")


def report(result: dict[str, Any]) -> str:
    """The text form: every number after its metric's name."""
    lines = []
    if "formats" in result:
        formats = result["formats"]
        lines.append(
            f"predictions format: {formats['predictions']}; references format: {formats['references']}"
        )
    lines += [
        f"tokenizer: {result['tokenizer']}; pairs: {result['pairs']}; references: {result['references']}",
    ]
    for name in METRICS:
        value = result[name]
        lines.append(f"{name:<8} {value:7.2f}" if value is not None else f"{name:<8} {result['meteor']}")
    for side in ("only_in_predictions", "only_in_references"):
        if result.get(side):
            lines.append(f"{side} (not scored): {len(result[side])}: {_some(result[side])}")
    return "\n".join(lines)
