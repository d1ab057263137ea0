"""`generate`/`instruct` on the tiny random editors of each family, through the real diffusers
pipeline classes: b at a's size, a untouched, the seed per record, the instruction reaching the
pipeline, provenance, rejections (a failing call, missing input, out of memory)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from imgdiff.errors import UsageError
from imgdiff.models import ModelEntry, ModelPool
from imgdiff.record import Edit, Record
from imgdiff.stages import STAGES
from imgdiff.stages.generate.calls import ShrinkingCalls
from imgdiff.stages.generate.instruct import InstructGenerate, working_size
from imgdiff.stages.generate.instructions import instruction
from imgdiff.store import ImageLoader
from stage_contract import StageContract

FAMILIES = {"ip2p": "instruct-pix2pix", "kontext": "flux-kontext", "qwen_edit": "qwen-image-edit"}
# The component each pipeline hands the prompt text to.
TEXT_READER = {"ip2p": "tokenizer", "kontext": "tokenizer_2", "qwen_edit": "processor"}


class TestInstructGenerateContract(StageContract):
    # The contract's pairs carry no edit: every record is rejected `missing_edit`, which is still
    # the contract's subject (reject, never drop; decide from stored; batch-split independence).
    stage_cls = InstructGenerate
    settings = {"editor": "ip2p", "preset": "instruct-pix2pix", "resolution": 32, "steps": 1}

    @pytest.fixture(autouse=True)
    def _tiny_model(self, tiny_models: Any) -> None:
        self.models = {"ip2p": tiny_models("ip2p")}


def _photo(seed: int = 0, size: tuple[int, int] = (40, 56)) -> np.ndarray:
    """A small photo-like image whose size is no multiple of 16, with a bright object in it."""
    rng = np.random.default_rng(seed)
    image = np.linspace(40, 200, size[1])[None, :, None] * np.ones((size[0], 1, 3))
    image[10:30, 15:35] = [200, 40, 40]
    return np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)


def _record(i: int, seed: int, kind: str = "replacement", new: str = "dog") -> Record:
    return Record(
        id=f"r{i}", source_index=i, seed=seed, kind=kind, caption_a="a cat on a bench",
        edit=Edit(old="cat", new=new), artifacts={"a": _photo()},
    )  # fmt: skip


def _stage(tiny_models: Any, name: str, **settings: Any) -> InstructGenerate:
    # Qwen-Image's schedule stretches to a terminal shift, which divides by zero at one step.
    steps = 2 if name == "qwen_edit" else 1
    given = {"editor": name, "preset": FAMILIES[name], "steps": steps, "resolution": 48, **settings}
    stage = InstructGenerate(InstructGenerate.resolve_settings(given, "test"))
    stage.setup(ModelPool({name: ModelEntry(**tiny_models(name))}), ImageLoader(Path(".")))
    return stage


@pytest.mark.parametrize("name", list(FAMILIES))
def test_each_family_edits_through_its_pipeline(tiny_models: Any, name: str, monkeypatch: Any) -> None:
    stage = _stage(tiny_models, name, edits_per_call=3)
    reader = getattr(stage.model.pipe, TEXT_READER[name])
    texts: list[str] = []
    original = type(reader).__call__

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        text = kwargs.get("text", args[0] if args else None)
        texts.extend([text] if isinstance(text, str) else list(text or []))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(reader), "__call__", spy)
    # Two records with one seed (at different places in the call) and one with another seed.
    records = [_record(0, 7), _record(1, 8, kind="removal", new=""), _record(2, 7)]
    a_before = records[0].artifacts["a"].copy()
    out = stage(records)
    assert [r.status for r in out] == ["kept"] * 3, [r.reason for r in out]
    b = [r.artifacts["b"] for r in out]
    assert all(image.shape == a_before.shape and image.dtype == np.uint8 for image in b)
    assert np.array_equal(out[0].artifacts["a"], a_before)  # a stays the photo's pixels
    assert np.array_equal(b[0], b[2])  # same seed and input, same image, wherever in the call
    assert not np.array_equal(b[0], b[1])
    assert any("replace the cat with a dog" in t for t in texts), texts
    assert any("remove the cat" in t for t in texts), texts
    generation = out[1].generation
    assert generation["family"] == FAMILIES[name] and generation["seed"] == 8
    assert generation["instruction"] == "remove the cat" and generation["steps"] == stage.settings.steps
    assert generation["pipeline"] == type(stage.model.pipe).__name__
    assert generation["height"] % 8 == 0 and generation["width"] > generation["height"]


@pytest.mark.parametrize("name", list(FAMILIES))
def test_a_failing_pipeline_call_rejects_only_its_record(
    tiny_models: Any, name: str, monkeypatch: Any
) -> None:
    stage = _stage(tiny_models, name, edits_per_call=2)
    pipe_class = type(stage.model.pipe)

    def broken(self: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the editor broke\nwith a second line")

    monkeypatch.setattr(pipe_class, "__call__", broken)
    (record,) = stage([_record(0, 1)])
    assert record.status == "rejected" and record.rejected_by == "generate"
    assert record.reason == "editor_error: RuntimeError: the editor broke"
    assert "b" not in record.artifacts


def test_same_seed_same_image_across_calls(tiny_models: Any) -> None:
    first = _stage(tiny_models, "ip2p")([_record(0, 3)])[0].artifacts["b"]
    again = _stage(tiny_models, "ip2p")([_record(5, 3)])[0].artifacts["b"]
    assert np.array_equal(first, again)


def test_only_the_record_that_fails_alone_is_rejected(tiny_models: Any, monkeypatch: Any) -> None:
    stage = _stage(tiny_models, "ip2p", edits_per_call=3)
    real = stage.model.edit

    def edit(requests: list[Any], sampling: Any) -> list[np.ndarray]:
        if any("bird" in r.instruction for r in requests):
            raise ValueError("cannot draw birds")
        return real(requests, sampling)

    monkeypatch.setattr(stage.model, "edit", edit)
    out = stage([_record(0, 1), _record(1, 2, new="bird"), _record(2, 3)])
    assert [r.status for r in out] == ["kept", "rejected", "kept"]
    assert out[1].reason == "editor_error: ValueError: cannot draw birds"


def test_out_of_memory_halves_the_call_and_rejects_a_lone_misfit(tiny_models: Any, monkeypatch: Any) -> None:
    import torch

    stage = _stage(tiny_models, "ip2p", edits_per_call=4)
    sizes: list[int] = []

    def edit(requests: list[Any], sampling: Any) -> list[np.ndarray]:
        sizes.append(len(requests))
        if len(requests) > 1 or "bird" in requests[0].instruction:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return [r.image for r in requests]

    monkeypatch.setattr(stage.model, "edit", edit)
    out = stage([_record(0, 1), _record(1, 2, new="bird"), _record(2, 3), _record(3, 4)])
    assert [r.status for r in out] == ["kept", "rejected", "kept", "kept"]
    assert out[1].reason.startswith("out_of_memory:")
    assert stage.calls.size == 1 and sizes[:2] == [4, 2]


def test_shrinking_calls_keep_below_the_size_that_failed() -> None:
    import torch

    calls = ShrinkingCalls(8, "test")
    served: list[list[int]] = []

    def call(group: list[int]) -> None:
        if len(group) > 2:
            raise torch.cuda.OutOfMemoryError("no memory")
        served.append(group)

    calls.run(list(range(5)), call, lambda item: pytest.fail(f"{item} rejected"))
    assert sorted(i for group in served for i in group) == [0, 1, 2, 3, 4]
    assert calls.size == 2


def test_records_it_cannot_edit_are_rejected_with_reasons(tiny_models: Any) -> None:
    stage = _stage(tiny_models, "ip2p")
    no_edit = _record(0, 1)
    no_edit.edit = None
    no_image = _record(1, 1)
    no_image.artifacts = {}
    gone = _record(2, 1)
    gone.artifacts, gone.images = {}, {"a": "images/xx/gone_a.png"}
    out = stage([no_edit, no_image, gone])
    assert [r.reason.partition(":")[0] for r in out] == ["missing_edit", "missing_image", "missing_file"]


def test_a_preset_of_another_family_fails_setup_in_one_line(tiny_models: Any) -> None:
    with pytest.raises(
        UsageError, match="preset 'flux-kontext' is for flux-kontext models.*use preset instruct-pix2pix"
    ):
        _stage(tiny_models, "ip2p", preset="flux-kontext")


def test_registered_picklable_and_presets_say_their_family() -> None:
    assert STAGES["generate"]["instruct"] is InstructGenerate
    settings = InstructGenerate.resolve_settings({"editor": "e"}, "test")
    assert settings.preset == "qwen-image-edit" and settings.steps == 50 and settings.negative_prompt == " "
    pix2pix = InstructGenerate.resolve_settings({"editor": "e", "preset": "instruct-pix2pix"}, "test")
    assert (pix2pix.steps, pix2pix.guidance, pix2pix.image_guidance, pix2pix.resolution) == (
        100,
        7.5,
        1.5,
        512,
    )
    assert "edits_per_call" not in settings.score_defining()
    pickle.loads(pickle.dumps(InstructGenerate(settings)))
    with pytest.raises(UsageError, match="unknown setting 'step'"):
        InstructGenerate.resolve_settings({"editor": "e", "step": 3}, "test")
    assert InstructGenerate(settings)([]) == []


@pytest.mark.parametrize(
    ("old", "new", "kind", "expected"),
    [
        ("cat", "dog", "replacement", "replace the cat with a dog"),
        ("a cat", "apple", "replacement", "replace the cat with an apple"),
        ("cats", "dogs", "replacement", "replace the cats with dogs"),
        ("two cats", "two dogs", "replacement", "replace the two cats with two dogs"),
        ("umbrella", "unicycle", "replacement", "replace the umbrella with a unicycle"),
        ("cat", "", "removal", "remove the cat"),
        ("one cat", "", "removal", "remove the cat"),
        ("some apples", "some oranges", "replacement", "replace some apples with some oranges"),
        ("the cat", "", "replacement", "remove the cat"),
    ],
)
def test_instructions(old: str, new: str, kind: str, expected: str) -> None:
    assert instruction(Edit(old=old, new=new), kind) == expected


def test_working_size_keeps_the_aspect_ratio_in_model_multiples() -> None:
    assert working_size(480, 640, 1024, 16) == (880, 1184)
    assert working_size(640, 427, 512, 8) == (624, 416)
    assert working_size(4, 4000, 32, 16) == (16, 1008)
