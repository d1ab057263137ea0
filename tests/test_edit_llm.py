"""Stage edit/llm through a real local OpenAI-compatible server with scripted answers: each answer
form is read or rejected with its reason; retries use derived seeds; presets reach the request."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from imgdiff.models import ModelEntry, ModelPool
from imgdiff.record import Edit, Record, derive_seed
from imgdiff.stages.edit.llm import LLMEdit, parse_answer
from imgdiff.store import ImageLoader
from openai_server import ChatServer
from stage_contract import StageContract
from test_edit_lexicon import run_edit


def _json(edited: str, old: str, new: str) -> str:
    return json.dumps({"edited_caption": edited, "old_object": old, "new_object": new})


def _caption(body: dict) -> str:
    match = re.search(r"^Caption: (.*)$", body["messages"][-1]["content"], re.MULTILINE)
    assert match is not None
    return match.group(1)


def _scripted(answers: dict[str, list[str]]) -> Callable[[dict], str]:
    """Answers per caption, in order: requests for one caption come one after another."""
    queues = {caption: list(queue) for caption, queue in answers.items()}
    return lambda body: queues[_caption(body)].pop(0)


def _entry(server: ChatServer) -> dict[str, Any]:
    return {"role": "text_generator", "backend": "openai", "base_url": server.url, "model": "test"}


@pytest.fixture(scope="module")
def square_server() -> Iterator[ChatServer]:
    """Answers every contract caption ("scene i with a square") with the square made a circle."""

    def answer(body: dict) -> str:
        caption = _caption(body)
        return "```json\n" + _json(caption.replace("square", "circle"), "square", "circle") + "\n```"

    with ChatServer(answer) as server:
        yield server


class TestLLMEditContract(StageContract):
    stage_cls = LLMEdit
    settings = {"llm": "llm"}

    @pytest.fixture(autouse=True)
    def _server(self, square_server: ChatServer) -> None:
        self.models = {"llm": _entry(square_server)}


def _edit(server: ChatServer, captions: list[str], **settings: Any) -> list[Record]:
    stage = LLMEdit(LLMEdit.resolve_settings({"llm": "llm", **settings}, "test"))
    return run_edit(stage, ModelPool({"llm": ModelEntry(**_entry(server))}), captions)


TRUNCATED = '{"edited_caption": "A balloon in the'
SCRIPT = {
    "A dog on a sofa.": [_json("A cat on a sofa.", "dog", "cat")],
    "A cat on a bench.": ["```json\n" + _json("A rabbit on a bench.", "cat", "rabbit") + "\n```"],
    "A man riding a horse.": [
        f"Sure! Here is the JSON:\n{_json('A man riding a camel.', 'horse', 'camel')}\nEnjoy."
    ],
    "A bus on a street.": [_json("A truck on a road.", "bus", "truck")],
    "A cup on a table.": [_json("A cup on a table.", "cup", "mug")],
    "A bird on a wire.": [_json("I replaced the bird with a bat: A bat on a wire.", "bird", "bat")],
    "A kite in the sky.": [TRUNCATED] * 3,
    "A horse in a field.": [TRUNCATED, _json("A cow in a field.", "horse", "cow")],
    "A boat on a lake.": ["A ship on a lake."] * 3,
    "A car on a road.": [
        '{"edited_caption": "A van on a road.", "old_object": "car"}',
        _json("A van on a road.", "car", "van"),
    ],
}


def test_each_answer_form_is_read_or_rejected_with_its_reason() -> None:
    with ChatServer(_scripted(SCRIPT)) as server:
        out = _edit(server, list(SCRIPT))
        requests = list(server.requests)
    got = {
        r.caption_a: (r.reason.split(":")[0] if r.reason else None, r.scores.get("edit.attempts"))
        for r in out
    }
    assert got == {
        "A dog on a sofa.": (None, 1.0),
        "A cat on a bench.": (None, 1.0),  # a code fence
        "A man riding a horse.": (None, 1.0),  # prose around the JSON
        "A bus on a street.": ("multiple_changes", 1.0),  # two objects changed
        "A cup on a table.": ("no_change", 1.0),
        "A bird on a wire.": ("meta_talk", 1.0),
        "A kite in the sky.": ("truncated", 3.0),  # asked three times, then given up
        "A horse in a field.": (None, 2.0),  # a truncated answer, then a good one
        "A boat on a lake.": ("unparseable", 3.0),  # no JSON at all
        "A car on a road.": (None, 2.0),  # a key missing, then a good one
    }
    by_caption = {r.caption_a: r for r in out}
    assert by_caption["A man riding a horse."].caption_b == "A man riding a camel."
    assert by_caption["A horse in a field."].edit.new == "cow"
    assert by_caption["A kite in the sky."].reason == (
        "truncated: the answer stops inside its JSON object (after 3 attempts)"
    )
    assert all(r.id.endswith("-0") and r.child_index == [0] for r in out)
    # Retries go out with seeds derived from the child's; the paper's sampling reaches the server.
    kite = by_caption["A kite in the sky."]
    seeds = [body["seed"] for body in requests if _caption(body) == "A kite in the sky."]
    assert seeds == [kite.seed, derive_seed(kite.seed, "attempt-1"), derive_seed(kite.seed, "attempt-2")]
    assert {(b["temperature"], b["max_tokens"], "top_p" in b) for b in requests} == {(0.8, 128, False)}
    assert len(requests) == 10 + 2 + 1 + 2 + 1


def test_fan_out_names_the_siblings_objects_and_rejects_duplicates() -> None:
    script = {
        "A dog on a sofa.": [
            _json("A cat on a sofa.", "dog", "cat"),
            _json("A cat on a sofa.", "dog", "cat"),
        ],
        "A dog on a bed.": [
            _json("A cat on a bed.", "dog", "cat"),
            _json("A rabbit on a bed.", "dog", "rabbit"),
        ],
    }
    with ChatServer(_scripted(script)) as server:
        out = _edit(server, list(script), n_edits=2)
        prompts = [body["messages"][-1]["content"] for body in server.requests]
    assert [(r.id[-2:], r.reason) for r in out] == [
        ("-0", None),
        ("-1", "duplicate: the same edit as child 0"),
        ("-0", None),
        ("-1", None),
    ]
    assert sum("Do not use any of these as the new entity: cat." in p for p in prompts) == 2
    assert out[3].caption_b == "A rabbit on a bed." and len({r.seed for r in out}) == 4


def test_siblings_are_named_once_each_and_only_with_a_new_object() -> None:
    answers = ["A dog on a sofa.", "A cat on a sofa.", "A cat on a sofa.", "A cow on a sofa."]
    with ChatServer(_scripted({"A dog on a sofa.": answers})) as server:
        _edit(server, ["A dog on a sofa."], n_edits=4, preset="reference")
        prompts = [body["messages"][-1]["content"] for body in server.requests]
    avoided = [m.group(1) if (m := re.search(r"new entity: ([^.]*)\.", p)) else None for p in prompts]
    assert avoided == [None, None, "cat", "cat"]  # the first answer changed nothing: no new object


def test_an_earlier_edit_of_the_record_is_neither_kept_nor_avoided() -> None:
    script = {"A dog on a sofa.": ["no idea"] * 2}
    with ChatServer(_scripted(script)) as server:
        stage = LLMEdit(LLMEdit.resolve_settings({"llm": "llm", "max_attempts": 2}, "test"))
        stage.setup(ModelPool({"llm": ModelEntry(**_entry(server))}), ImageLoader(Path(".")))
        given = Record(
            "0" * 12,
            0,
            1,
            caption_a="A dog on a sofa.",
            caption_b="A cat on a sofa.",
            edit=Edit("dog", "cat"),
        )
        (child,) = stage([given])
        prompts = [body["messages"][-1]["content"] for body in server.requests]
    assert (child.caption_b, child.edit, child.reason) == (
        "",
        None,
        "unparseable: no JSON object in the answer (after 2 attempts)",
    )
    assert len(prompts) == 2 and not any("Do not use" in p for p in prompts)


def test_presets_reach_the_request() -> None:
    script = {"A dog on a sofa.": [_json("A cat on a sofa.", "dog", "cat")]}
    with ChatServer(_scripted(script)) as server:
        (record,) = _edit(server, list(script), preset="data-juicer")
        (body,) = server.requests
    assert record.kept and (body["temperature"], body["top_p"], body["max_tokens"]) == (0.9, 0.95, 128)
    assert '"edited_caption"' in body["messages"][-1]["content"]


def test_reference_preset_keeps_what_only_its_keywords_would_drop() -> None:
    script = {
        "A dog on a sofa.": ["A cat on a sofa."],
        "A dog on a bed.": ["The dog was replaced by a cat on a bed."],
        "A dog on a mat.": ["A cat on a rug."],  # two changes: the reference keeps it, we do not
    }
    with ChatServer(_scripted(script)) as server:
        reference = _edit(server, list(script), preset="reference")
        (body, *_) = server.requests
    assert "Answer with the rewritten caption only." in body["messages"][-1]["content"]
    assert [(r.reason.split(":")[0] if r.reason else None) for r in reference] == [
        None,
        "reference_keyword",
        None,
    ]
    assert (reference[0].edit.old, reference[0].edit.new) == ("dog", "cat")  # from the word diff
    assert (reference[2].edit.old, reference[2].edit.new) == ("dog", "cat")  # the first change
    with ChatServer(_scripted(script)) as server:
        ours = _edit(server, list(script), prompt="sentence")
    assert [(r.reason.split(":")[0] if r.reason else None) for r in ours] == [
        None,
        "meta_talk",
        "multiple_changes",
    ]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            _json("A cat.", "dog", "cat"),
            {"edited_caption": "A cat.", "old_object": "dog", "new_object": "cat"},
        ),
        (
            '```\n{"Edited_Caption": "A cat.", "OLD_OBJECT": "dog", "new_object": "cat"}\n```',
            "edited_caption",
        ),
        (
            'Answer: {"edited_caption": "A {curly} cat.", "old_object": "dog", "new_object": "cat"} -- done',
            "curly",
        ),
        ('{"edited_caption": "A cat", "old_object": "dog", "new_object": ', "truncated"),
        ('```json\n{"edited_caption": "A \\"quoted', "truncated"),
        ("{'edited_caption': 'A cat'}", "unparseable"),
        (
            '{"edited_caption": "A cat.", "old_object": "dog", "new_object": 3}',
            "unparseable: 'new_object' is not text",
        ),
        ("", "unparseable: no JSON object"),
    ],
)
def test_parse_answer(answer: str, expected: object) -> None:
    parsed = parse_answer(answer)
    if isinstance(expected, dict):
        assert parsed == expected
    elif expected in ("edited_caption", "curly"):
        assert isinstance(parsed, dict) and parsed["old_object"] == "dog", parsed
    else:
        assert isinstance(parsed, str) and parsed.startswith(str(expected)), parsed
