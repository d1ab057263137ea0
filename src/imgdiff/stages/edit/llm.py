"""Stage `edit`, method `llm`: a text generator replaces one entity of each caption (METHOD.md 1).

The prompt asks for ONE physically plausible replacement and a JSON answer with exactly the keys
`edited_caption`, `old_object` (the replaced words, as in the caption) and `new_object` (the new
words, as in the edited caption). Reading the answer is forgiving about form: a code fence, text
before or after the object, key case; the first JSON object that decodes is the answer. An answer
that cannot be read is asked again with another seed (`derive_seed(child seed, "attempt-<k>")`), up
to `max_attempts` in all; the last failure is the reason: `unparseable` (no JSON object, a missing
key, a value that is not text, an empty caption) or `truncated` (the answer stops inside its JSON
object: `max_new_tokens` ran out). What the answer says is then validated like every edit
(`validate.py`: `meta_talk`, `no_change`, `multiple_changes`, ...) and not asked again: a model that
rewrites the whole caption would mostly do it again.

Child k of a caption is asked after its siblings, with their new objects named as ones not to use,
so the `n_edits` children get distinct new objects; all captions of a batch are asked in one
`generate` call per round. Score `attempts`: how many answers the child needed.

Presets: `paper` (the research code: temperature 0.8, no top_p, 128 new tokens), `data-juicer` (its
recipe: temperature 0.9, top_p 0.95), both with our checks; `reference` asks for the sentence only,
as the reference does, takes the first change a word diff finds as old and new
(`validate.diff_edit`), and applies only the reference's keyword filter.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from imgdiff.language.text import BadCaption, clean_caption, words
from imgdiff.models.roles import Generation
from imgdiff.record import Edit, Record, derive_seed
from imgdiff.settings import model_ref
from imgdiff.stages.edit import CHECKED, REFERENCE, EditSettings, EditStage
from imgdiff.stages.edit.validate import diff_edit

if TYPE_CHECKING:
    from imgdiff.models import ModelPool
    from imgdiff.store import ImageLoader

KEYS = ("edited_caption", "old_object", "new_object")
JSON_PROMPT = (
    "Rewrite the image caption below so that exactly ONE entity in it (an object, an animal, a person, "
    "a vehicle, a piece of furniture, ...) is replaced by a different, physically plausible entity. "
    "Keep every other word as it is.{avoid}\n"
    "Caption: {caption}\n"
    'Answer with JSON only, in this form: {{"edited_caption": "<the rewritten caption>", '
    '"old_object": "<the replaced words, as in the caption>", '
    '"new_object": "<the new words, as in the rewritten caption>"}}'
)
SENTENCE_PROMPT = (
    "Replace ONE entity in the image caption below (an object, an animal, a person, a vehicle, a piece "
    "of furniture, ...) with another, physically plausible entity.{avoid} Answer with the rewritten "
    "caption only.\nCaption: {caption}"
)
_AVOID = " Do not use any of these as the new entity: {names}."
_FENCE = re.compile(r"```[a-zA-Z]*\s*(.*?)```", re.DOTALL)


class LLMEditSettings(EditSettings):
    llm: str = model_ref("text_generator")
    prompt: Literal["json", "sentence"] = "json"
    temperature: float = Field(0.8, ge=0)
    top_p: float | None = Field(None, gt=0, le=1)
    max_new_tokens: int = Field(default=128, ge=1)
    max_attempts: int = Field(default=3, ge=1)  # answers asked for per child when one cannot be read


class LLMEdit(EditStage):
    method = "llm"
    version = 2  # 2: a stricter word diff (moved objects, an object's number)
    Settings = LLMEditSettings
    PRESETS = {
        "paper": dict(CHECKED),  # the sampling defaults are the research code's
        "data-juicer": {**CHECKED, "temperature": 0.9, "top_p": 0.95},
        "reference": {**REFERENCE, "prompt": "sentence"},
    }

    def setup(self, models: ModelPool, images: ImageLoader) -> None:
        super().setup(models, images)
        self.llm = models.get(self.settings.llm)

    def __call__(self, records: list[Record]) -> list[Record]:
        groups: list[tuple[Record, list[Record]]] = [(record, []) for record in records]
        for record in records:
            if not words(record.caption_a):
                record.reject(self.name, "empty_caption: the record has no caption_a to edit")
        for k in range(self.settings.n_edits):
            asked = []
            for parent, children in groups:
                if parent.kept:
                    # A sibling's new object, once each; an answer that changed nothing names none.
                    avoid = list(
                        dict.fromkeys(c.edit.new for c in children if c.edit is not None and c.edit.new)
                    )
                    children.append(self.child(parent, k))
                    asked.append((children[-1], avoid))
            self._ask(asked)
        return self.finish(groups)

    def _ask(self, asked: list[tuple[Record, list[str]]]) -> None:
        """Fill each child's caption_b and edit from the model's answers, asking again (other seeds)
        while an answer cannot be read; reject the child after `max_attempts`."""
        s = self.settings
        pending = list(asked)
        failed: dict[str, str] = {}
        for attempt in range(s.max_attempts):
            if not pending:
                return
            prompts = [[{"role": "user", "content": self.prompt(c.caption_a, avoid)}] for c, avoid in pending]
            seeds = [
                c.seed if attempt == 0 else derive_seed(c.seed, f"attempt-{attempt}") for c, _ in pending
            ]
            sampling = Generation(
                max_new_tokens=s.max_new_tokens, temperature=s.temperature, top_p=s.top_p, seeds=seeds
            )
            answers = self.llm.generate(prompts, sampling)
            retry = []
            for (child, avoid), answer in zip(pending, answers, strict=True):
                child.scores[f"{self.name}.attempts"] = float(attempt + 1)
                read = self.read(child.caption_a, answer)
                if isinstance(read, str):
                    failed[child.id] = read
                    retry.append((child, avoid))
                else:
                    child.caption_b, child.edit = read
            pending = retry
        for child, _ in pending:
            child.reject(self.name, f"{failed[child.id]} (after {s.max_attempts} attempts)")

    def prompt(self, caption: str, avoid: list[str]) -> str:
        template = JSON_PROMPT if self.settings.prompt == "json" else SENTENCE_PROMPT
        return template.format(caption=caption, avoid=_AVOID.format(names=", ".join(avoid)) if avoid else "")

    def read(self, caption: str, answer: str) -> tuple[str, Edit] | str:
        """(edited caption, edit) from an answer, or why it cannot be read."""
        if self.settings.prompt == "sentence":
            try:
                edited = clean_caption(answer)
            except BadCaption:
                return "unparseable: the answer is empty"
            return edited, Edit(*diff_edit(caption, edited))
        fields = parse_answer(answer)
        if isinstance(fields, str):
            return fields
        try:
            edited = clean_caption(fields["edited_caption"])
        except BadCaption:
            return "unparseable: edited_caption is empty"
        return edited, Edit(old=fields["old_object"].strip(), new=fields["new_object"].strip())


def parse_answer(text: str) -> dict[str, str] | str:
    """The answer's JSON fields (`KEYS`), or a reason: `unparseable: ...` or `truncated: ...`."""
    fenced = _FENCE.search(text)
    body = fenced.group(1) if fenced else re.sub(r"^\s*```[a-zA-Z]*", "", text)
    decoder = json.JSONDecoder()
    for brace in re.finditer(r"\{", body):
        try:
            value, _ = decoder.raw_decode(body, brace.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return _fields(value)
    if "{" not in body:
        return "unparseable: no JSON object in the answer"
    if _unclosed(body[body.index("{") :]):
        return "truncated: the answer stops inside its JSON object"
    return "unparseable: the answer's JSON object does not decode"


def _fields(value: dict[object, object]) -> dict[str, str] | str:
    named = {str(k).strip().lower(): v for k, v in value.items()}
    for key in KEYS:
        if key not in named:
            return f"unparseable: the JSON answer lacks '{key}'"
        if not isinstance(named[key], str):
            return f"unparseable: '{key}' is not text"
    return {key: str(named[key]) for key in KEYS}


def _unclosed(text: str) -> bool:
    """Whether JSON text starting at '{' ends before its object closes (inside a string or not)."""
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return False
    return True
