from __future__ import annotations

import pytest

from imgdiff.record import SCHEMA_VERSION, Edit, Record, Region, TruthBox, derive_seed, record_id


def test_ids_and_seeds_are_derived_not_drawn() -> None:
    rid = record_id("fp", 7)
    assert len(rid) == 12 and rid == record_id("fp", 7) != record_id("fp", 8) != record_id("gp", 7)
    assert derive_seed(0, rid) == derive_seed(0, rid) != derive_seed(1, rid)
    assert 0 <= derive_seed(0, rid) < 2**63


def test_round_trip_keeps_every_field_and_drops_artifacts() -> None:
    record = Record(
        id="abc",
        source_index=3,
        seed=5,
        kind="replacement",
        caption_a="a cat",
        caption_b="a dog",
        edit=Edit("cat", "dog"),
        images={"a": "images/ab/abc_a.png"},
        scores={"s.x": 1},
        regions=[Region(box=[1, 2, 3, 4], source="diff", scores={"area": 4.0})],
        truth=[TruthBox(box=[0, 0, 5, 5])],
        artifacts={"a": object()},
    )
    data = record.to_dict()
    assert "artifacts" not in data and data["schema_version"] == SCHEMA_VERSION
    again = Record.from_dict(data)
    assert again == record and again.artifacts == {}
    assert isinstance(data["scores"]["s.x"], float)


def test_newer_schema_is_refused() -> None:
    data = Record(id="a", source_index=0, seed=0).to_dict()
    data["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(ValueError, match="newer"):
        Record.from_dict(data)


def test_children() -> None:
    parent = Record(id="abc", source_index=2, seed=9, scores={"x": 1.0})
    kid = parent.child(1)
    grandkid = kid.child(0)
    assert (kid.id, kid.child_index, grandkid.id, grandkid.child_index) == ("abc-1", [1], "abc-1-0", [1, 0])
    assert kid.seed != parent.seed and kid.seed == parent.child(1).seed
    kid.scores["y"] = 2.0
    assert parent.scores == {"x": 1.0}  # children do not share mutable fields with the parent
    parent.regions.append(Region(box=[0, 0, 1, 1], source="diff"))
    first, second = parent.child(0), parent.child(1)
    first.regions[0].box[0] = 9
    assert second.regions[0].box[0] == 0 and parent.regions[0].box[0] == 0
    assert sorted([grandkid, kid, parent], key=Record.sort_key) == [parent, kid, grandkid]
