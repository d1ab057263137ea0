"""The edit checks: every failure mode gives its own reason; clean single-object edits pass."""

from __future__ import annotations

import pytest

from imgdiff.language.text import BadCaption, clean_caption, words
from imgdiff.stages.edit.validate import (
    check_edit,
    diff_edit,
    find_phrase,
    length_ratio,
    meta_talk,
    reference_filter,
    same_object,
)


@pytest.mark.parametrize(
    ("source", "edited", "old", "new"),
    [
        ("A dog on a sofa.", "A cat on a sofa.", "dog", "cat"),
        ("An apple on a table.", "A banana on a table.", "apple", "banana"),  # article follows
        ("A banana on a table.", "An apple on a table.", "a banana", "an apple"),  # articles in the phrases
        ("Two dogs sit on a couch.", "Two cats sit on a couch.", "dogs", "cats"),
        ("The cat is sleeping.", "The dogs are sleeping.", "cat", "dogs"),  # agreement follows
        ("A red fire hydrant by a road.", "A red traffic cone by a road.", "fire hydrant", "traffic cone"),
        ("A teddy bear on a bed.", "A doll on a bed.", "teddy bear", "doll"),
        ("A teddy bear on a bed.", "A bear on a bed.", "teddy bear", "bear"),  # part of the old phrase stays
        ("A bear on a bed.", "A teddy bear on a bed.", "bear", "teddy bear"),
        ("A red stop sign by a road.", "An umbrella by a road.", "stop sign", "umbrella"),  # a modifier goes
        ("a man holding his phone", "a woman holding her phone", "man", "woman"),  # pronouns follow
        ("A dog on a bed. The dog sleeps.", "A cat on a bed. The cat sleeps.", "dog", "cat"),  # one entity
        ("A dog on a bed. The dog sleeps.", "A cat on a bed. The dog sleeps.", "dog", "cat"),
        ("zebra standing in a field", "Lion standing in a field", "zebra", "Lion"),  # case aside
        ("The dog sits on a sofa.", "The cats sit on a sofa.", "dog", "cats"),  # the verb follows
    ],
)
def test_one_object_replaced_passes(source: str, edited: str, old: str, new: str) -> None:
    assert check_edit(source, edited, old, new) is None


@pytest.mark.parametrize(
    ("source", "edited", "old", "new", "code"),
    [
        ("A dog on a sofa.", "", "dog", "cat", "empty"),
        ("A dog on a sofa.", "Sure, here is the caption: A cat on a sofa.", "dog", "cat", "meta_talk"),
        ("A dog on a sofa.", "I replaced the dog: a cat on a sofa.", "dog", "cat", "meta_talk"),
        ("A dog on a sofa.", "New caption: A cat on a sofa.", "dog", "cat", "meta_talk"),
        ("A dog on a sofa.", "A dog -> cat on a sofa.", "dog", "cat", "meta_talk"),
        ("A dog on a sofa.", "a dog on a sofa", "dog", "cat", "no_change"),  # case and punctuation aside
        ("A dog on the sofa.", "The dog on a sofa.", "dog", "cat", "no_change"),  # only articles
        ("A dog on a sofa.", "A puppy on a sofa.", "dog", "puppy", "same_object"),  # synonyms
        ("A dog on a sofa.", "Dogs on a sofa.", "dog", "dogs", "same_object"),  # number only
        ("A dog on a sofa.", "A cat on a sofa.", "horse", "cat", "old_missing"),
        ("A dog on a sofa.", "A cat on a sofa.", "dog", "rabbit", "new_missing"),
        ("A dog on a sofa.", "A dog on a sofa.", "", "cat", "no_change"),
        ("A dog on a sofa.", "A cat on a sofa.", "", "cat", "old_missing"),
        (
            "A dog on a sofa.",
            "A dog and a cat on a sofa.",
            "dog",
            "cat",
            "not_replaced",
        ),  # added, not swapped
        ("A dog on a sofa.", "A cat on a bed.", "dog", "cat", "multiple_changes"),
        ("A dog on a sofa.", "A cat on a sofa with a ball.", "dog", "cat", "multiple_changes"),
        ("A dog on a sofa.", "A cat on a sofa.", "sofa", "cat", "not_replaced"),  # the wrong old object
        ("A dog sleeping on a sofa.", "A cat running on a sofa.", "dog", "cat", "multiple_changes"),
        ("Two dogs on a sofa.", "Three cats on a sofa.", "dogs", "cats", "multiple_changes"),  # the count
        ("A sleeping dog on a sofa.", "A barking cat on a sofa.", "dog", "cat", "multiple_changes"),
        ("A dog on a sofa.", "On a sofa, a cat.", "dog", "cat", "multiple_changes"),  # moved
        ("A man riding the horse.", "A woman riding the horses.", "man", "woman", "multiple_changes"),
        ("The dog sits on a sofa.", "The cats run on a sofa.", "dog", "cats", "multiple_changes"),
        (
            "A man riding a horse.",
            "A man riding a camel in the desert.",
            "horse",
            "camel",
            "multiple_changes",
        ),
    ],
)
def test_each_failure_has_its_reason(source: str, edited: str, old: str, new: str, code: str) -> None:
    reason = check_edit(source, edited, old, new)
    assert reason is not None and reason.split(":")[0] == code, reason


def test_a_second_change_is_named_in_the_reason() -> None:
    reason = check_edit("A dog on a sofa.", "A cat on a bed.", "dog", "cat")
    assert reason == "multiple_changes: 'sofa' -> 'bed' besides 'dog' -> 'cat'"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ('  "A dog on a sofa."  ', "A dog on a sofa."),
        ("“A dog\non a\tsofa”", "A dog on a sofa."[:-1]),
        ("'A man's hat.'", "A man's hat."),  # wrapping quotes go, the apostrophe stays
        ('a sign reading "stop"', 'a sign reading "stop"'),  # a quoted word at the end stays
        ('"stop" reads the "sign"', '"stop" reads the "sign"'),
        ("Ａ ｄｏｇ on a ﬁre hydrant\u200b", "A dog on a fire hydrant"),  # NFKC; a format character goes
        ("A\u00a0dog\x00 on a sofa", "A dog on a sofa"),
    ],
)
def test_caption_hygiene(raw: str, clean: str) -> None:
    assert clean_caption(raw) == clean


@pytest.mark.parametrize(
    ("raw", "code"),
    [("", "empty_caption"), ('  "" ', "empty_caption"), ("...", "empty_caption"), (3, "not_text")],
)
def test_unusable_captions_are_refused_with_a_reason(raw: object, code: str) -> None:
    with pytest.raises(BadCaption, match=f"^{code}: "):
        clean_caption(raw)


def test_helpers() -> None:
    assert words("A man's hat, on the 2 tables!") == ["a", "man's", "hat", "on", "the", "2", "tables"]
    assert length_ratio("a dog on a sofa", "a fire hydrant on a sofa") == 1.2
    assert find_phrase(words("two dogs and a dog"), ["dog"]) == [1, 4]
    assert find_phrase(words("a fire hydrant"), ["fire", "hydrants"]) == [1]
    assert same_object(["man"], ["guy"]) and same_object(["brown", "dog"], ["puppy"])
    assert not same_object(["teddy", "bear"], ["bear"])
    assert meta_talk("Here is the edited caption") is not None and meta_talk("A cat on a mat") is None
    assert meta_talk("The dog was replaced by a cat.") == "was replaced by"
    assert diff_edit("An apple on a table.", "A banana on a table.") == ("apple", "banana")
    assert diff_edit("A dog on a mat.", "A cat on a rug.") == ("dog", "cat")  # the first change only
    assert diff_edit("A dog on a mat.", "a dog on a mat") == ("", "")
    assert reference_filter("The dog was REPLACED by a cat") == "replac"
    assert reference_filter("A cat becomes a dog") == "become" and reference_filter("a cat on a mat") is None
