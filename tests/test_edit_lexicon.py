"""Stage edit/lexicon: contract, number and articles, multi-word objects, fan-out, real captions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import imgdiff
from conftest import SHARED_DATA
from imgdiff.language.articles import indefinite_article as article
from imgdiff.language.coco_words import NOUNS
from imgdiff.language.mentions import find_mentions
from imgdiff.language.swaps import replace, targets
from imgdiff.language.vocabulary import forms, objects
from imgdiff.models import ModelPool
from imgdiff.record import Record, derive_seed
from imgdiff.stages.base import Stage
from imgdiff.stages.edit.lexicon import LexiconEdit
from imgdiff.stages.edit.validate import check_edit
from imgdiff.store import ImageLoader
from stage_contract import StageContract


class TestLexiconEditContract(StageContract):
    stage_cls = LexiconEdit


def run_edit(stage: Stage, models: ModelPool, captions: list[str]) -> list[Record]:
    """`captions` as records (run seed 0) through an edit stage set up with `models`, then the
    stage's keep decision on each kept record (test_edit_llm uses this too)."""
    stage.setup(models, ImageLoader(Path(".")))
    records = [
        Record(f"{i:012x}", i, derive_seed(0, f"{i:012x}"), caption_a=c) for i, c in enumerate(captions)
    ]
    out = stage(records)
    for record in out:
        if record.kept:
            stage.decide(record)
    return out


def _edit(captions: list[str], **settings: Any) -> list[Record]:
    return run_edit(LexiconEdit(LexiconEdit.resolve_settings(settings, "test")), ModelPool({}), captions)


def _obj(name: str) -> Any:
    return next(o for o in objects() if o.name == name)


def _mentioned(caption: str) -> list[str]:
    return [caption[m.start : m.end] for m in find_mentions(caption)[0]]


def test_plurals_keep_their_number() -> None:
    out = _edit(["Two dogs sit on a couch."], n_edits=4)
    assert len(out) == 4
    for record in out:
        assert record.kept, record.reason
        if record.edit.old == "dogs":
            new = _obj(forms()[record.edit.new][0].name)
            assert (
                record.edit.new == new.plural[0]
                and record.caption_b == f"Two {new.plural[0]} sit on a couch."
            )
    (mention,) = [m for m in find_mentions("A herd of sheep in a field")[0] if m.obj.name == "sheep"]
    assert mention.plural  # "sheep" takes its number from the words around it
    assert not find_mentions("A sheep in a field")[0][0].plural
    white = find_mentions("A white sheep in a field")[0][0]
    assert not white.plural  # the determiner two words back says one
    assert replace("A white sheep in a field", white, _obj("goat"))[0] == "A white goat in a field"
    herd = find_mentions("A herd of zebra on a plain")[0][0]
    assert (
        replace("A herd of zebra on a plain", herd, _obj("elephant"))[0] == "A herd of elephants on a plain"
    )
    assert replace("Three knives on a table", find_mentions("Three knives on a table")[0][0], _obj("fork"))[
        0
    ] == ("Three forks on a table")


def test_articles_follow_the_new_word() -> None:
    (apple, table) = find_mentions("An apple on a table.")[0]
    assert replace("An apple on a table.", apple, _obj("banana")) == ("A banana on a table.", "banana")
    assert replace("an apple on a table.", apple, _obj("banana"))[0] == "a banana on a table."
    banana = find_mentions("A banana and a pear.")[0][0]
    assert replace("A banana and a pear.", banana, _obj("orange"))[0] == "An orange and a pear."
    bike = find_mentions("a man on a bike")[0][1]
    assert replace("a man on a bike", bike, _obj("unicycle"))[0] == "a man on a unicycle"
    zebra = find_mentions("Zebra standing in a field")[0][0]
    assert replace("Zebra standing in a field", zebra, _obj("elephant"))[0] == "Elephant standing in a field"
    for record in _edit(["An apple on a table.", "A banana on a table."], n_edits=6):
        if record.edit.old in ("apple", "banana"):
            first, second = record.caption_b.split()[:2]
            assert first == article(second).capitalize() and second == record.edit.new, record.caption_b


def test_multi_word_objects() -> None:
    caption = "A red fire hydrant next to a teddy bear."
    assert _mentioned(caption) == ["fire hydrant", "teddy bear"]  # not "bear"
    hydrant, teddy = find_mentions(caption)[0]
    assert replace(caption, teddy, _obj("doll"))[0] == "A red fire hydrant next to a doll."
    assert replace(caption, hydrant, _obj("traffic cone"))[0] == "A red traffic cone next to a teddy bear."
    bench = find_mentions("A bench in a park")[0][0]
    assert replace("A bench in a park", bench, _obj("rocking chair"))[0] == "A rocking chair in a park"
    for record in _edit(
        [caption, "A park bench by a hot dog stand.", "A pair of skis in the snow."], n_edits=3
    ):
        assert record.kept, record.reason
        assert check_edit(record.caption_a, record.caption_b, record.edit.old, record.edit.new) is None
    skis = find_mentions("A pair of skis in the snow.")[0][0]
    assert replace("A pair of skis in the snow.", skis, _obj("snowboard"))[0] == "A snowboard in the snow."
    # Object words that say what kind the next one is go with it; a/an follows the new word.
    for caption, old, new, edited in (
        ("A laptop computer on a desk.", "laptop computer", "monitor", "A monitor on a desk."),
        ("An apple pie on a plate.", "apple pie", "cookie", "A cookie on a plate."),
        ("A cat on a computer desk.", "computer desk", "counter", "A cat on a counter."),
    ):
        (whole,) = [m for m in find_mentions(caption)[0] if caption[m.start : m.end].lower() == old]
        assert replace(caption, whole, _obj(new)) == (edited, new)
        assert check_edit(caption, edited, old, new) is None


def test_replacements_are_the_same_kind_of_thing() -> None:
    """Super-categories are kinds that fit the same sentence: a pitcher throws no tennis racket, a
    surfer's wave takes no skis, a family sits at no dresser, a reflection is in no pillow."""
    never = {
        "baseball bat": "frisbee",
        "ball": "tennis racket",
        "surfboard": "pair of skis",
        "table": "dresser",
        "bowl": "bottle",
        "cake": "taco",
        "book": "toy car",
        "mirror": "pillow",
        "stop sign": "fire hydrant",
        "stove": "blender",
        "cell phone": "pair of headphones",
    }
    for old, new in never.items():
        obj = forms()[old][0]
        assert new not in {o.name for o in targets(obj, set(), set())}, (old, new)


@pytest.mark.parametrize(
    ("caption", "objects_found"),
    [
        ("train traveling down a train station", ["train"]),  # the second one names a station
        ("A computer desk with a laptop", ["computer desk", "laptop"]),  # replaced whole, not "computer"
        ("a laptop computer on a desk", ["laptop computer", "desk"]),
        ("an apple pie next to a flat screen tv", ["apple pie", "flat screen tv"]),
        ("a baby elephant", ["elephant"]),  # a person before an object is an adjective
        ("a truck bed and a toilet bowl", []),  # parts of a truck and of a toilet
        ("A batter at home plate", ["batter"]),
        ("an orange cat next to an orange", ["cat", "orange"]),  # the first orange is a colour
        ("orange and white cat", ["cat"]),
        ("a man's hat on a chair", ["hat", "chair"]),  # possessive
        ("people wearing glasses", ["people"]),  # spectacles or drinking glasses: left alone
        ("a dog-friendly cafe with a dog", ["dog"]),
        ("A baseball player swinging a bat", ["baseball player", "bat"]),
        ("people playing frisbee after a game of frisbee with a frisbee", ["people", "frisbee"]),
        ("a bus stop sign next to a stop sign", ["stop sign"]),
    ],
)
def test_modifiers_and_compounds(caption: str, objects_found: list[str]) -> None:
    assert _mentioned(caption) == objects_found


def test_people_keep_gendered_pronouns_and_roles_are_only_replaced() -> None:
    for record in _edit(["A man holding his phone.", "A skier on her way down."], n_edits=3):
        assert record.kept, record.reason
        if record.edit.old == "man":
            assert _obj(record.edit.new).gender == "m"
        if record.edit.old == "skier":
            assert _obj(record.edit.new).gender == "f"
    assert not any(o.target for o in objects() if o.name in ("skier", "person", "baby"))


def test_a_sink_is_replaced_by_what_fits_the_room() -> None:
    for caption, group in (
        ("A bathroom with a sink.", "bathroom fixture"),
        ("A kitchen with a sink.", "kitchen appliance"),
    ):
        for record in _edit([caption], n_edits=3):
            assert _obj(record.edit.new).group == group


def test_fan_out_gives_distinct_new_objects_deterministically() -> None:
    captions = ["A cat sitting on a wooden bench.", "A bus parked next to a car."]
    first, second = _edit(captions, n_edits=4), _edit(captions, n_edits=4)
    assert [r.to_dict() for r in first] == [r.to_dict() for r in second]
    assert [r.id for r in first[:4]] == [f"{0:012x}-{k}" for k in range(4)]
    for index in (0, 1):
        children = [r for r in first if r.source_index == index]
        assert len(children) == 4 and all(r.kept and r.kind == "replacement" for r in children)
        assert len({r.edit.new for r in children}) == 4 and len({r.seed for r in children}) == 4
        for r in children:
            assert r.scores["edit.length_ratio"] > 0 and r.scores["edit.clip_tokens"] < 20
            assert r.edit.new not in ("car", "bus", "cat", "bench")  # nothing the caption already names


def test_captions_without_an_edit_reject_the_record_itself() -> None:
    out = _edit(["A patio on the beach near the ocean.", "", "A tram on a street."], n_edits=2)
    assert [(r.id, r.reason.split(":")[0] if r.reason else None) for r in out] == [
        (f"{0:012x}", "no_object"),
        (f"{1:012x}", "empty_caption"),
        (f"{2:012x}-0", None),  # a train or a tram: one other rail vehicle, so one child
    ]
    assert out[2].caption_b == "A train on a street."


def test_thresholds_are_decisions() -> None:
    long = "a dog " + "and a very long tail " * 15
    (record,) = _edit([long])
    assert record.reason.startswith("clip_tokens_max: clip_tokens") and record.scores["edit.clip_tokens"] > 75
    (record,) = _edit([long], preset="reference")
    assert record.kept  # the reference checks nothing but its keywords
    # Any edit of "a dog" has at least as many words: a maximum under 1 rejects it, one over 1 may not.
    (record,) = _edit(["a dog"], length_ratio_max=0.99)
    assert (
        record.reason.startswith("length_ratio_max: length_ratio") and record.scores["edit.length_ratio"] >= 1
    )
    (record,) = _edit(["a dog"], length_ratio_max=1.2)
    assert record.kept == (record.scores["edit.length_ratio"] <= 1.2)


def test_reference_preset_makes_the_same_edits() -> None:
    captions = ["A cat sitting on a wooden bench.", "Two dogs sit on a couch.", "A man holding his phone."]
    paper, reference = _edit(captions, n_edits=2), _edit(captions, n_edits=2, preset="reference")
    assert [r.caption_b for r in paper] == [r.caption_b for r in reference]


def test_vocabulary() -> None:
    names = {o.name for o in objects()}
    coco_words = {w for singular, plural in NOUNS.values() for w in singular + plural}
    assert len(NOUNS) == 80 and coco_words <= set(forms())  # every COCO word names a lexicon object
    assert {"man", "woman", "boy", "girl", "child"} <= names
    assert {"lion", "van", "lamp", "plate", "helicopter", "tomato"} <= names  # Objects365 names
    assert len(objects()) >= 200
    for group in {o.group for o in objects()}:
        assert sum(o.target for o in objects() if o.group == group) >= 2, group
    assert forms()["knives"][0].name == "knife" and forms()["mice"][1] == "plural"
    assert forms()["sheep"][1] == "either" and forms()["children"][0].name == "child"


@pytest.mark.skipif(not (SHARED_DATA / "captions").is_dir(), reason="the shared caption data is not here")
def test_real_captions_mostly_get_a_valid_edit_and_every_output_validates() -> None:
    sets = {
        "coco_style": [
            c["caption"] for c in json.loads((SHARED_DATA / "captions/coco_style_captions.json").read_text())
        ],
        "coco-mini": [
            a["caption"]
            for a in json.loads((SHARED_DATA / "coco-mini/captions.json").read_text())["annotations"]
        ],
    }
    valid = {}
    for name, captions in sets.items():
        out = _edit(captions)
        for record in out:
            if record.kept:
                assert (
                    check_edit(record.caption_a, record.caption_b, record.edit.old, record.edit.new) is None
                )
            else:
                assert record.reason.split(":")[0] in ("no_object", "no_alternative"), record.reason
        valid[name] = sum(r.kept for r in out) / len(captions)
    pooled = sum(valid[n] * len(sets[n]) for n in sets) / sum(len(c) for c in sets.values())
    assert pooled >= 0.8 and min(valid.values()) >= 0.8, valid


def test_a_recipe_runs_captions_edit_then_generate(tmp_path: Path, tiny_models: Any) -> None:
    captions = tmp_path / "captions.txt"
    captions.write_text("A dog on a sofa.\nA cat on a bench.\nA sky.\n")
    recipe = {
        "seed": 0,
        "source": {"type": "captions", "path": str(captions)},
        "models": {"sd15": tiny_models("sd15")},
        "stages": [
            {"edit": {"method": "lexicon"}},
            {"generate": {"method": "p2p", "preset": "sd15", "diffusion": "sd15", "size": 64, "steps": 2}},
        ],
    }
    imgdiff.run(recipe, tmp_path / "run")
    records = imgdiff.load_records(tmp_path / "run")
    assert [(r.status, r.rejected_by) for r in records] == [
        ("kept", None),
        ("kept", None),
        ("rejected", "edit"),
    ]
    for record in records[:2]:
        assert record.edit is not None and record.edit.new in record.caption_b
        assert (tmp_path / "run" / record.images["b"]).is_file() and record.generation["seed"] == record.seed
