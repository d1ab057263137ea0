"""`describe`/`vlm` with a scripted vision-language server (the local OpenAI-compatible test server)
and the tiny CLIP and BLIP: the box rules of both presets, per-box reasons, what the model is asked
and shown (pixels checked), CLIP truncation of long captions, BLIP on both crops, cached per-box work,
the naturalness check."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from imgdiff.models import ModelEntry, ModelPool
from imgdiff.record import Record, Region
from imgdiff.stages.describe.vlm import VlmDescribe
from imgdiff.store import ImageLoader
from openai_server import ChatServer, _images_of, _last_user_text
from stage_contract import StageContract

W, H = 200, 100  # 20,000 px: 1/400 of it is 50 px, 1/10 is 2,000 px
A = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
B = 255 - A
BOXES = [[10 + 20 * k, 10 + 40 * (k % 2), 25 + 20 * k, 30 + 40 * (k % 2)] for k in range(9)]  # 300 px each
TINY = [0.0, 0.0, 5.0, 5.0]  # 25 px: under 1/400
LARGE = [0.0, 0.0, 100.0, 50.0]  # 5,000 px: over 1/10
LOOSE = {"blip_cosine_gt": None, "clip_similarity_lt": 0.9999}  # only identical captions fail CLIP


def coords(box: list[float]) -> str:
    x1, y1, x2, y2 = box
    return f"[{x1 / W:.2f}, {y1 / H:.2f}, {x2 / W:.2f}, {y2 / H:.2f}]"


class Script:
    """The VL model's answers: region captions by (box, image), differences echo their hints."""

    def __init__(
        self, same: set[str] = frozenset(), long: set[str] = frozenset(), natural: str = "Yes."
    ) -> None:
        self.same, self.long, self.natural = same, long, natural  # box texts with equal / 300-word captions
        self.asked: list[tuple[str, str, list[np.ndarray]]] = []  # (kind, text, images)

    def __call__(self, body: dict[str, Any]) -> str:
        user = [m for m in body["messages"] if m["role"] == "user"][-1]
        text, images = _last_user_text(body["messages"]), _images_of(user["content"])
        if text.startswith("Please provide a short description"):
            self.asked.append(("region", text, images))
            where = text[text.index("[") :].rstrip(".")
            side = "a" if np.array_equal(images[0], A) else "b"
            if where in self.long:  # 300 words, the same first 100 on both sides
                return " ".join(["red cat on a table"] * 20 + [f"{side} blue dog here"] * 50)
            if where in self.same:
                return f"a green bench at {where}"
            return f"a {'red cat' if side == 'a' else 'blue dog'} at {where}"
        if "look like natural photos" in text:
            self.asked.append(("natural", text, images))
            return self.natural
        self.asked.append(("difference", text, images))
        return "The left box shows " + re.findall(r"left image shows (.*?);", text)[0] + "."

    def kinds(self) -> list[str]:
        return [kind for kind, _, _ in self.asked]


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def server(script: Script) -> Iterator[ChatServer]:
    with ChatServer(lambda body: script(body)) as running:
        yield running


def make_stage(server: ChatServer, tiny_models: Any, **settings: Any) -> VlmDescribe:
    given = {"vl": "vl", "embedder": "clip", "matcher": "blip", **settings}
    stage = VlmDescribe(VlmDescribe.resolve_settings(given, "test"))
    entries = {
        "vl": ModelEntry(role="vl_generator", backend="openai", base_url=server.url, model="scripted"),
        "clip": ModelEntry(**tiny_models("clip")),
        "blip": ModelEntry(**tiny_models("blip")),
    }
    stage.setup(ModelPool(entries), ImageLoader(Path(".")))
    return stage


def record(boxes: list[list[float]], index: int = 0) -> Record:
    regions = [Region(box=[float(v) for v in box], source="diff") for box in boxes]
    return Record(id=f"r{index}", source_index=index, seed=index, regions=regions, artifacts={"a": A, "b": B})


def described(stage: VlmDescribe, records: list[Record]) -> list[Record]:
    out = stage(records)
    for r in out:
        if r.kept:
            stage.decide(r)
    return out


def reasons(r: Record) -> list[str | None]:
    return [None if region.reason is None else region.reason.split(":")[0] for region in r.regions]


def test_paper_skips_small_boxes_and_stops_after_five_accepted(
    server: ChatServer, script: Script, tiny_models: Any
) -> None:
    # box 0 is under 1/400; boxes 2 and 4 get the same caption on both sides, so CLIP rejects them
    script.same = {coords(BOXES[1]), coords(BOXES[3])}
    stage = make_stage(server, tiny_models, **LOOSE)
    (r,) = described(stage, [record([TINY, *BOXES])])
    assert reasons(r) == [
        "area_min",
        None,
        "clip_similarity_lt",
        None,
        "clip_similarity_lt",
        None,
        None,
        None,
        "max_regions",
        "max_regions",
    ]
    assert r.kept and sum(region.rejected_by is None for region in r.regions) == 5
    assert r.regions[0].reason == "area_min: area 0.00125 < 0.0025"
    assert r.regions[2].reason.startswith("clip_similarity_lt: clip_similarity 1 >= 0.9999")
    # The model saw exactly the boxes the reference's one-by-one walk reaches: 7 of them, not the
    # small one, nothing after the fifth accepted; differences only for those that passed.
    asked_boxes = {text[text.index("[") :].rstrip(".") for kind, text, _ in script.asked if kind == "region"}
    assert asked_boxes == {coords(b) for b in BOXES[:7]}
    assert script.kinds().count("region") == 14 and script.kinds().count("difference") == 5
    assert all(region.captions == {} for region in r.regions[8:]) and r.regions[0].captions == {}
    assert r.scores["describe.regions"] == 7.0


def test_data_juicer_skips_large_boxes_and_has_no_cap(
    server: ChatServer, script: Script, tiny_models: Any
) -> None:
    settings = {"preset": "data-juicer", "clip_similarity_max": 0.9999, "blip_itm_min": None}
    stage = make_stage(server, tiny_models, **settings)
    (r,) = described(stage, [record([LARGE, TINY, *BOXES])])
    assert reasons(r) == ["area_max", None, *[None] * len(BOXES)]
    assert r.regions[0].reason == "area_max: area 0.25 > 0.1"
    assert script.kinds().count("difference") == len(BOXES) + 1  # the tiny box too: no minimum
    assert VlmDescribe.PRESETS["data-juicer"] == {
        "area_max": 0.1,
        "clip_similarity_max": 0.8,
        "blip_itm_min": 0.4,
    }


def test_no_accepted_box_rejects_the_pair(server: ChatServer, script: Script, tiny_models: Any) -> None:
    script.same = {coords(BOXES[0])}
    (r,) = described(make_stage(server, tiny_models, **LOOSE), [record([TINY, BOXES[0]])])
    assert not r.kept and r.rejected_by == "describe" and r.reason == "no_regions: none of 2 boxes accepted"
    assert reasons(r) == ["area_min", "clip_similarity_lt"]  # each box keeps its own reason


def test_prompts_and_the_side_by_side_pixels(server: ChatServer, script: Script, tiny_models: Any) -> None:
    box = [20.0, 20.0, 70.0, 50.0]
    (r,) = described(make_stage(server, tiny_models, **LOOSE), [record([box])])
    regions = [asked for asked in script.asked if asked[0] == "region"]
    (difference,) = [asked for asked in script.asked if asked[0] == "difference"]
    text = "Please provide a short description for this region: [0.10, 0.20, 0.35, 0.50]."
    assert [asked[1] for asked in regions] == [text, text]
    # each prompt shows one ORIGINAL image, unmarked: a for one, b for the other
    shown = sorted(regions, key=lambda asked: not np.array_equal(asked[2][0], A))
    assert np.array_equal(shown[0][2][0], A) and np.array_equal(shown[1][2][0], B)
    assert difference[1] == (
        "The two images are shown side by side, separated by a black bar. Hints: the red box in the left "
        "image shows a red cat at [0.10, 0.20, 0.35, 0.50]; the red box in the right image shows a blue "
        "dog at [0.10, 0.20, 0.35, 0.50]. What is the difference between the contents of the red boxes? "
        "Answer in a few concise sentences."
    )
    (shown,) = difference[2]
    assert shown.shape == (H, 2 * W + 20, 3)
    assert not shown[:, W : W + 20].any()  # the 20 px black bar
    red = np.array([255, 0, 0], np.uint8)
    for offset, original in ((0, A), (W + 20, B)):
        half = shown[:, offset : offset + W]
        # the frame: box grown by 5 px -> columns 15..74, rows 15..54 inclusive, 3 px wide
        frame = np.zeros((H, W), bool)
        frame[15:55, 15:75] = True
        frame[18:52, 18:72] = False
        assert (half[frame] == red).all()
        assert np.array_equal(half[~frame], original[~frame])  # nothing else drawn
    assert r.regions[0].captions == {
        "a": "a red cat at [0.10, 0.20, 0.35, 0.50]",
        "b": "a blue dog at [0.10, 0.20, 0.35, 0.50]",
    }
    assert r.regions[0].difference == "The left box shows a red cat at [0.10, 0.20, 0.35, 0.50]."
    tokens = sorted(body["max_tokens"] for body in server.requests)
    assert tokens == [64, 64, 128] and all(body["temperature"] == 0 for body in server.requests)


def test_long_captions_are_truncated_for_clip(server: ChatServer, script: Script, tiny_models: Any) -> None:
    script.long = {coords(BOXES[0])}
    (r,) = described(make_stage(server, tiny_models, **LOOSE), [record([BOXES[0], BOXES[1]])])
    region = r.regions[0]
    assert len(region.captions["a"].split()) == 300 and region.captions["a"] != region.captions["b"]
    # both captions start with the same 100 words, far past CLIP's 75 tokens: equal after truncation
    assert region.scores["clip_similarity"] == pytest.approx(1.0, abs=1e-5)
    assert region.reason.startswith("clip_similarity_lt") and r.regions[1].rejected_by is None


def test_blip_scores_each_caption_on_its_own_crop_grown_by_5_px(server: ChatServer, tiny_models: Any) -> None:
    stage = make_stage(server, tiny_models, **LOOSE)
    box = [20.0, 20.0, 70.0, 50.0]
    (r,) = described(stage, [record([box])])
    region = r.regions[0]
    crops = [A[15:55, 15:75], B[15:55, 15:75]]
    itm, cosine = stage.matcher.match(crops, [region.captions["a"], region.captions["b"]])
    assert [region.scores["blip_cosine_a"], region.scores["blip_cosine_b"]] == pytest.approx(
        cosine.tolist(), abs=1e-5
    )
    assert [region.scores["blip_itm_a"], region.scores["blip_itm_b"]] == pytest.approx(itm.tolist(), abs=1e-5)
    assert region.scores["blip_cosine"] == min(region.scores["blip_cosine_a"], region.scores["blip_cosine_b"])
    # the rule holds on both crops: a threshold between the two rejects the box
    low, high = sorted(cosine.tolist())
    stage = make_stage(server, tiny_models, **{**LOOSE, "blip_cosine_gt": (low + high) / 2})
    stage.decide(r)
    assert r.regions[0].reason.startswith("blip_cosine_gt: blip_cosine")


def test_a_looser_decision_computes_only_the_newly_admitted_boxes(
    server: ChatServer, script: Script, tiny_models: Any
) -> None:
    stage = make_stage(server, tiny_models, **LOOSE, max_regions=2)
    (scored,) = stage([record(BOXES[:6])])
    stored = Record.from_dict(scored.to_dict())  # what the part line holds
    assert script.kinds().count("region") == 4 and script.kinds().count("difference") == 2
    looser = make_stage(server, tiny_models, **LOOSE, max_regions=4)
    assert not stage.incomplete(Record.from_dict(stored.to_dict()))
    assert looser.incomplete(Record.from_dict(stored.to_dict()))
    decided = Record.from_dict(stored.to_dict())
    looser.decide(decided)  # before the work: the new boxes wait, with a reason that says so
    assert reasons(decided) == [None, None, "not_described", "not_described", "max_regions", "max_regions"]
    script.asked.clear()
    again = Record.from_dict(stored.to_dict())
    again.artifacts = {"a": A, "b": B}  # the engine's ImageLoader reads them from the run's files
    (finished,) = described(looser, [again])
    asked = {text[text.index("[") :].rstrip(".") for kind, text, _ in script.asked if kind == "region"}
    assert asked == {coords(BOXES[2]), coords(BOXES[3])} and script.kinds().count("difference") == 2
    assert reasons(finished) == [None, None, None, None, "max_regions", "max_regions"]
    assert finished.regions[0].captions == stored.regions[0].captions
    assert not looser.incomplete(finished)


def test_naturalness_check_rejects_unnatural_pairs_before_any_box_work(
    server: ChatServer, script: Script, tiny_models: Any
) -> None:
    script.natural = "No, the dog has three heads."
    stage = make_stage(server, tiny_models, preset="imgdiff", **LOOSE)
    (r,) = described(stage, [record(BOXES[:2])])
    assert r.reason == "require_natural: the model says the pair does not look natural"
    assert r.scores["describe.natural"] == 0.0 and script.kinds() == ["natural"]
    (_, _, (shown,)) = script.asked[0]
    assert np.array_equal(shown, np.concatenate([A, np.zeros((H, 20, 3), np.uint8), B], axis=1))  # no box
    script.natural = "yes"
    (r,) = described(stage, [record(BOXES[:2])])
    assert r.kept and r.scores["describe.natural"] == 1.0
    assert "naturalness" not in VlmDescribe.PRESETS["paper"]  # off in the paper's preset


def test_bad_images_reject_the_record(server: ChatServer, tiny_models: Any) -> None:
    stage = make_stage(server, tiny_models, **LOOSE)
    missing = Record(id="m", source_index=0, seed=0, regions=[Region(box=BOXES[0], source="diff")])
    mismatched = record(BOXES[:1], 1)
    mismatched.artifacts["b"] = B[:50]
    out = described(
        stage,
        [
            missing,
            mismatched,
            record([[500.0, 500.0, 600.0, 600.0], [float("nan"), 0.0, 9.0, 9.0], BOXES[0]], 2),
        ],
    )
    assert [r.reason.split(":")[0] if r.reason else None for r in out] == [
        "missing_image",
        "size_mismatch",
        None,
    ]
    assert reasons(out[2]) == ["empty_box", "empty_box", None]


class TestVlmDescribeContract(StageContract):
    stage_cls = VlmDescribe
    settings = {
        "vl": "llava",
        "embedder": "clip",
        "matcher": "blip",
        "region_tokens": 6,
        "difference_tokens": 6,
    }
    upstream = [{"pair_filter": {"method": "pixel"}}, {"regions": {"method": "pixel"}}]

    @pytest.fixture(autouse=True)
    def _tiny(self, tiny_models: Any) -> None:
        type(self).models = {name: tiny_models(name) for name in ("llava", "clip", "blip")}
