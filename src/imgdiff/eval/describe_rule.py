"""`imgdiff eval describe RUN --pred P`: whether difference texts name the record's edit, plus
caption metrics against the run's own template descriptions.

The rule (`names_edit`), on lower-cased words with nouns compared by their lemma ("cats" = "cat"):
- a replacement (old -> new) is named when the text holds the head noun (last word) of both
  phrases and every word in which the two phrases differ: for "red circle" -> "blue circle", the
  words circle, red and blue; for "cat" -> "dog", cat and dog. Which one comes first is not checked.
- a removal is named when the text holds every word of the old phrase and a removal word
  (`REMOVAL_WORDS`: removed, gone, missing, no longer, empty, ...).
Articles, numbers and determiners are ignored. Other kinds (distractor, unknown) have no edit and are
not scored. `describe_accuracy` is the share of scored pairs whose text names the edit.

Caption metrics: each pair's references are the difference sentences that `describe` accepted for
it (`region.difference`); pairs without one are left out of these metrics and counted.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from imgdiff.record import Record

_WORD = re.compile(r"[a-z0-9]+")
IGNORED = frozenset(("a", "an", "the", "this", "that", "these", "those", "some", "of", "one", "two", "three"))
REMOVAL_WORDS = (
    "removed", "remove", "removal", "gone", "missing", "disappeared", "disappears", "vanished",
    "no longer", "absent", "erased", "deleted", "empty", "taken away", "not there", "nothing",
    "only the background",
)  # fmt: skip


@lru_cache(maxsize=4096)
def lemma(word: str) -> str:
    from lemminflect import getLemma

    found = getLemma(word, upos="NOUN")
    return found[0] if found else word


def _lemmas(text: str) -> list[str]:
    return [lemma(w) for w in _WORD.findall(text.lower())]


def _content(phrase: str) -> list[str]:
    return [w for w in _lemmas(phrase) if w not in IGNORED]


def names_edit(text: str, record: Record) -> bool | None:
    """Whether `text` names the record's edit by the rule above; None when there is no rule."""
    if record.edit is None or record.kind not in ("replacement", "removal"):
        return None
    words = set(_lemmas(text))
    old = _content(record.edit.old)
    if not old:
        return None
    if record.kind == "removal":
        lowered = " ".join(_WORD.findall(text.lower()))
        said_gone = any(re.search(rf"\b{cue}\b", lowered) for cue in REMOVAL_WORDS)
        return set(old) <= words and said_gone
    new = _content(record.edit.new)
    if not new:
        return None
    needed = {old[-1], new[-1]} | (set(old) ^ set(new))
    return needed <= words


def template_references(record: Record) -> list[str]:
    return [r.difference for r in record.regions if r.rejected_by is None and r.difference]


def evaluate(records: list[Record], answers: dict[str, str], tokenizer: str = "auto") -> dict[str, Any]:
    """`describe_accuracy` overall and per kind, and caption metrics against template descriptions."""
    from imgdiff.eval.captions import score_sentences

    by_kind: dict[str, list[bool]] = {}
    not_scored = 0
    for record in records:
        verdict = names_edit(answers[record.id], record)
        if verdict is None:
            not_scored += 1
            continue
        by_kind.setdefault(record.kind, []).append(verdict)
    marks = [m for kind in by_kind.values() for m in kind]
    result: dict[str, Any] = {
        "describe_accuracy": sum(marks) / len(marks) if marks else None,
        "pairs": len(marks),
        "not_scored": not_scored,
        "per_kind": {k: {"describe_accuracy": sum(v) / len(v), "pairs": len(v)} for k, v in by_kind.items()},
    }
    refs = {r.id: template_references(r) for r in records if template_references(r)}
    result["without_template"] = len(records) - len(refs)
    if refs:
        result["captions"] = score_sentences({i: [answers[i]] for i in refs}, refs, tokenizer)
    return result


def report(result: dict[str, Any]) -> str:
    from imgdiff.eval.captions import report as captions_report

    accuracy = result["describe_accuracy"]
    lines = [
        f"describe_accuracy {accuracy:.4f}" if accuracy is not None else "describe_accuracy none (no pair)",
        f"pairs: {result['pairs']}; not scored (no edit): {result['not_scored']}",
    ]
    for kind, values in sorted(result["per_kind"].items()):
        lines.append(
            f"  {kind:<12} describe_accuracy {values['describe_accuracy']:.4f}  pairs {values['pairs']}"
        )
    if "captions" in result:
        lines.append("caption metrics against the template descriptions:")
        lines.append(captions_report(result["captions"]))
    return "\n".join(lines)
