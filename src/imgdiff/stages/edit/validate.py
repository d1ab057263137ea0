"""Checks of one caption edit: is it exactly one object phrase replaced by another?

Shared by both `edit` methods and usable by any code that holds a (source, edited, old, new)
quadruple. Each check that fails gives a reason "<code>: <detail>":
- `empty`: the edited caption has no words;
- `meta_talk`: the model talked about its answer ("Sure, here is", "I replaced", "new caption:");
- `no_change`: the same words (case and punctuation aside), or only articles and agreement changed;
- `same_object`: old and new name one object ("dog" -> "puppy", "cat" -> "cats");
- `old_missing` / `new_missing`: the old phrase is not in the source, the new one not in the edit;
- `not_replaced`: the old phrase is still where it was (the new one was added beside it);
- `multiple_changes`: a word diff finds a change that is not the old -> new replacement.
The length ratio and CLIP's window are scores with thresholds (see the stage); duplicates among the
edits of one caption are found by the stage.

The word diff (difflib over lower-case words, punctuation ignored) allows, besides the replaced
phrase itself: articles and agreement words anywhere ("an apple is" -> "a banana is", "his" ->
"her"), words that differ only by inflection ("sits" -> "sit"; not an object's number: "horse" ->
"horses" is a second change), and up to two modifiers right before either phrase ("a red car" -> "a
bus"), as long as no determiner, preposition, number or -ing word lies between. Every other changed
word is a second change, and so is an object moved elsewhere in the sentence ("A dog on a sofa" ->
"On a sofa, a cat"): every change must hold the old phrase and the new one at the same place. A
phrase matches whatever the number of its last word ("dog" matches "dogs"), leading articles aside.
The same replacement made at several places ("A dog ... The dog" -> "A cat ... The cat") is one edit.

Also here: `diff_edit`, the old and new words of an answer that names no objects (the reference's
way of finding them). The words, agreement words and lemmas come from `imgdiff.language`.
"""

from __future__ import annotations

import difflib
import re

from imgdiff.language.grammar import AGREEMENT, PHRASE_BOUNDARY
from imgdiff.language.inflection import lemmas, same_noun
from imgdiff.language.text import words
from imgdiff.language.vocabulary import forms

_MODIFIERS = 2  # modifiers before a phrase that may change with it
REFERENCE_WORDS = ("replac", "modified", "become", "---")  # METHOD.md 1: the reference's whole filter
_META = re.compile(
    r"^\s*(sure|certainly|of course|okay|here is|here's|here are)\b"
    r"|^\s*(edited |new |rewritten )?(caption|answer|output|sentence)\s*:"
    r"|\b(i|we)\s+(have\s+|'ve\s+)?(replaced|changed|swapped|substituted|modified|edited|rewrote)\b"
    r"|\b(edited|modified|new|original|rewritten|revised|updated)\s+(caption|sentence|version)\b"
    r"|\b(is|was|were|been)\s+(replaced|swapped|substituted)\s+(with|by|for)\b"
    r"|\bas an ai\b|->|=>|---",
    re.IGNORECASE,
)


def length_ratio(source: str, edited: str) -> float:
    """Words of the edit per word of the source."""
    return len(words(edited)) / max(1, len(words(source)))


def meta_talk(text: str) -> str | None:
    """The words that show the text talks about an edit instead of being one, if any."""
    match = _META.search(text)
    return match.group(0).strip() if match else None


def reference_filter(text: str) -> str | None:
    """The reference's keyword that the text contains (case-insensitive), if any."""
    lower = text.lower()
    return next((word for word in REFERENCE_WORDS if word in lower), None)


def check_edit(source: str, edited: str, old: str, new: str) -> str | None:
    """The first failed check as a reason, or None when `edited` is `source` with exactly one object
    phrase `old` replaced by `new`."""
    src, dst = words(source), words(edited)
    if not dst:
        return "empty: the edited caption has no words"
    said = meta_talk(edited)
    if said:
        return f"meta_talk: '{said}' in the edited caption"
    if src == dst:
        return "no_change: the edited caption equals the source"
    spans = content_spans(src, dst)
    if not spans:
        return "no_change: only articles or agreement words changed"
    old_words, new_words = phrase_words(old), phrase_words(new)
    if not old_words or not new_words:
        side = "old" if not old_words else "new"
        return f"{side}_missing: no {side} object given"
    if same_object(old_words, new_words):
        return f"same_object: '{old}' and '{new}' name the same object"
    old_at, new_at = find_phrase(src, old_words), find_phrase(dst, new_words)
    if not old_at:
        return f"old_missing: '{old}' is not in the source"
    if not new_at:
        return f"new_missing: '{new}' is not in the edited caption"
    old_core, new_core = _covered(old_at, len(old_words)), _covered(new_at, len(new_words))
    # Count the old phrase where the new one does not contain it ("bear" -> "teddy bear").
    kept_old = [i for i in find_phrase(dst, old_words) if not set(range(i, i + len(old_words))) & new_core]
    if len(kept_old) >= len(old_at):
        return f"not_replaced: '{old}' is still in the edited caption"
    old_zone = old_core | _modifiers(src, old_at)
    new_zone = new_core | _modifiers(dst, new_at)
    for i1, i2, j1, j2 in spans:
        gone = [w for i, w in enumerate(src[i1:i2], i1) if i not in old_zone and w not in AGREEMENT]
        came = [w for j, w in enumerate(dst[j1:j2], j1) if j not in new_zone and w not in AGREEMENT]
        stray = _uninflected(gone, came)
        touches = bool(old_core & set(range(i1, i2)) or new_core & set(range(j1, j2)))
        # Both phrases at this place: "A dog on a sofa" -> "On a sofa, a cat" moves the object.
        in_place = bool(old_core & set(range(i1 - 1, i2 + 1)) and new_core & set(range(j1 - 1, j2 + 1)))
        if stray or not touches or not in_place:
            change = f"'{' '.join(src[i1:i2])}' -> '{' '.join(dst[j1:j2])}'"
            return f"multiple_changes: {change} besides '{old}' -> '{new}'"
    return None


def content_spans(src: list[str], dst: list[str]) -> list[tuple[int, int, int, int]]:
    """The changed spans (i1, i2, j1, j2) of a word diff, agreement-only changes left out."""
    matcher = difflib.SequenceMatcher(None, src, dst, autojunk=False)
    return [
        (i1, i2, j1, j2)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes()
        if tag != "equal" and not _agreement_only(src[i1:i2], dst[j1:j2])
    ]


def diff_edit(source: str, edited: str) -> tuple[str, str]:
    """(old, new): the words of the first change a word diff finds, articles and agreement words at
    its ends left out; ("", "") when nothing changed. For answers that name no objects."""
    src, dst = words(source), words(edited)
    spans = content_spans(src, dst)
    if not spans:
        return "", ""
    i1, i2, j1, j2 = spans[0]
    return _trimmed(src[i1:i2]), _trimmed(dst[j1:j2])


def _trimmed(span: list[str]) -> str:
    while span and span[0] in AGREEMENT:
        span = span[1:]
    while span and span[-1] in AGREEMENT:
        span = span[:-1]
    return " ".join(span)


def phrase_words(phrase: str) -> list[str]:
    """A phrase's words without leading articles ("a fire hydrant" -> ["fire", "hydrant"])."""
    out = words(phrase)
    while out and out[0] in ("a", "an", "the"):
        out = out[1:]
    return out


def find_phrase(tokens: list[str], phrase: list[str]) -> list[int]:
    """Start positions of `phrase` in `tokens`; its last word may differ in number."""
    n = len(phrase)
    return [
        i
        for i in range(len(tokens) - n + 1)
        if tokens[i : i + n - 1] == phrase[:-1] and same_noun(tokens[i + n - 1], phrase[-1])
    ]


def same_object(old: list[str], new: list[str]) -> bool:
    """Whether two phrases name one object: the same words up to number, or synonyms of the
    vocabulary ("puppy" and "dog", "man" and "guy")."""
    if len(old) == len(new) and old[:-1] == new[:-1] and same_noun(old[-1], new[-1]):
        return True
    a, b = _vocabulary_object(old), _vocabulary_object(new)
    return a is not None and a == b


def _vocabulary_object(phrase: list[str]) -> str | None:
    """The vocabulary object named by the phrase's longest suffix that is a form ("brown dog" -> dog)."""
    table = forms()
    for start in range(len(phrase)):
        hit = table.get(" ".join(phrase[start:]))
        if hit is not None:
            return hit[0].name
    return None


def _covered(starts: list[int], n: int) -> set[int]:
    return {i for start in starts for i in range(start, start + n)}


def _modifiers(tokens: list[str], starts: list[int]) -> set[int]:
    """Positions of up to two modifiers right before each occurrence of a phrase."""
    out = set()
    for start in starts:
        for i in range(start - 1, max(-1, start - 1 - _MODIFIERS), -1):
            if tokens[i] in PHRASE_BOUNDARY or tokens[i].endswith("ing"):
                break
            out.add(i)
    return out


def _agreement_only(a: list[str], b: list[str]) -> bool:
    if all(w in AGREEMENT for w in a + b):
        return True
    return len(a) == len(b) and all(
        x == y or (x in AGREEMENT and y in AGREEMENT) or _inflected(x, y) for x, y in zip(a, b, strict=True)
    )


def _uninflected(gone: list[str], came: list[str]) -> list[str]:
    """The words of `gone` and `came` left once each pair of forms of one word is taken out: a verb
    next to the replaced phrase may follow its number ("The dog sits" -> "The cats sit")."""
    came = list(came)
    left = []
    for word in gone:
        match = next((other for other in came if _inflected(word, other)), None)
        if match is None:
            left.append(word)
        else:
            came.remove(match)
    return left + came


def _inflected(a: str, b: str) -> bool:
    """Two forms of one word ("sits", "sit"), but not an object's number: "horse" -> "horses" is a
    second change."""
    table = forms()
    return bool(lemmas(a) & lemmas(b)) and a not in table and b not in table
