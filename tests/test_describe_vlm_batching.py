"""`describe`/`vlm` throughput on the tiny LLaVA-NeXT: every prompt of one kind of a batch of records
goes to the model in one `generate` call (counted), sorted by length; batched greedy tokens equal
one prompt at a time up to near-ties; CUDA out-of-memory halves `generate_batch_size`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from imgdiff.models import ModelEntry, ModelPool
from imgdiff.models.roles import Generation, VisionPrompt
from imgdiff.record import Record, Region
from imgdiff.stages.describe.batching import PromptBatcher, length_key
from imgdiff.stages.describe.vlm import VlmDescribe
from imgdiff.store import ImageLoader
from test_models_text import compare_batched_with_single

# Every box goes through: the thresholds are off, so the counts below are exact.
OPEN = {"area_min": None, "max_regions": None, "clip_similarity_lt": None, "blip_cosine_gt": None}
SIZES = [(48, 64), (64, 32), (40, 40)]  # LLaVA-NeXT's tokens per image follow the aspect ratio


def records() -> list[Record]:
    out = []
    for index, (h, w) in enumerate(SIZES):
        rng = np.random.default_rng(index)
        a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        boxes = [[2.0, 2.0, w / 2, h / 2], [w / 2, h / 2, w - 2.0, h - 2.0], [4.0, h / 3, w / 3, h - 4.0]]
        regions = [Region(box=box, source="diff") for box in boxes]
        out.append(
            Record(
                id=f"r{index}",
                source_index=index,
                seed=index,
                regions=regions,
                artifacts={"a": a, "b": 255 - a},
            )
        )
    return out


def make_stage(tiny_models: Any, **settings: Any) -> VlmDescribe:
    given = {"vl": "llava", "embedder": "clip", "matcher": "blip", "region_tokens": 8, "difference_tokens": 8}
    stage = VlmDescribe(VlmDescribe.resolve_settings({**given, **OPEN, **settings}, "test"))
    entries = {name: ModelEntry(**tiny_models(name)) for name in ("llava", "clip", "blip")}
    stage.setup(ModelPool(entries), ImageLoader(Path(".")))
    return stage


class Spy:
    """Counts the model's `generate` calls and keeps the prompts each backend call got."""

    def __init__(self, stage: VlmDescribe) -> None:
        self.vl = stage.batcher.model
        self.calls: list[int] = []  # batch size of each transformers generate call
        self.prompts: list[list[VisionPrompt]] = []
        model, generate, backend = self.vl.model, self.vl.model.generate, self.vl.generate

        def counting(**kwargs: Any) -> Any:
            self.calls.append(int(kwargs["input_ids"].shape[0]))
            return generate(**kwargs)

        def keeping(prompts: list[VisionPrompt], sampling: Generation) -> list[str]:
            self.prompts.append(list(prompts))
            return backend(prompts, sampling)

        model.generate = counting
        self.vl.generate = keeping

    def close(self) -> None:
        """Back to the plain backend (the instance attributes shadowed the class's methods)."""
        self.vl.model.__dict__.pop("generate", None)
        self.vl.__dict__.pop("generate", None)


@pytest.fixture
def spied(tiny_models: Any) -> Any:
    spies = []

    def make(**settings: Any) -> tuple[VlmDescribe, Spy]:
        stage = make_stage(tiny_models, **settings)
        spies.append(Spy(stage))
        return stage, spies[-1]

    yield make
    for spy in spies:
        spy.close()


def test_one_generate_call_per_batch_per_prompt_kind(spied: Any) -> None:
    stage, spy = spied()
    out = stage(records())
    assert spy.calls == [18, 9]  # 3 records x 3 boxes x 2 images, then 9 differences
    assert all(region.difference is not None for r in out for region in r.regions)
    for prompts in spy.prompts:  # sorted by length: prompts about one image shape sit together
        keys = [length_key(p) for p in prompts]
        assert keys == sorted(keys)
    stage, spy = spied(generate_batch_size=4)
    stage(records())
    assert spy.calls == [4, 4, 4, 4, 2, 4, 4, 1]


def test_batched_greedy_equals_one_at_a_time(spied: Any) -> None:
    stage, spy = spied()
    batched = stage(records()[:2])  # 12 region prompts, then 6 difference prompts
    vl = spy.vl
    spy.close()  # compare on the plain backend
    compared = sum(compare_batched_with_single(vl, prompts, max_new_tokens=8) for prompts in spy.prompts)
    assert compared >= 8 * 18 // 2
    if compared == 8 * 18:  # every step had a clear margin: the stage's whole output agrees too
        alone = make_stage_like(stage, generate_batch_size=1)(records()[:2])
        assert [r.to_dict() for r in alone] == [r.to_dict() for r in batched]


def make_stage_like(stage: VlmDescribe, **settings: Any) -> VlmDescribe:
    other = VlmDescribe(stage.settings.model_copy(update=settings))
    other.images, other.embedder, other.matcher = stage.images, stage.embedder, stage.matcher
    other.batcher = PromptBatcher(stage.batcher.model, other.settings.generate_batch_size)
    return other


class RunsOutOfMemory:
    """A backend whose device holds at most `fits` prompts per call (0: not even one)."""

    def __init__(self, fits: int) -> None:
        self.fits = fits
        self.calls: list[int] = []

    def generate(self, prompts: list[VisionPrompt], sampling: Generation) -> list[str]:
        self.calls.append(len(prompts))
        if len(prompts) > self.fits:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (scripted)")
        return [prompt.text.upper() for prompt in prompts]


def test_out_of_memory_halves_the_batch_for_good() -> None:
    image = np.zeros((8, 8, 3), np.uint8)
    prompts = [VisionPrompt(f"prompt {k}", [image]) for k in range(5)]
    backend = RunsOutOfMemory(fits=2)
    batcher = PromptBatcher(backend, 8)
    assert batcher.generate(prompts, Generation(), "region") == [f"PROMPT {k}" for k in range(5)]
    assert backend.calls == [5, 4, 2, 2, 1] and batcher.batch_size == 2
    backend.calls.clear()
    batcher.generate(prompts[:3], Generation(), "region")
    assert backend.calls == [2, 1]  # the lowered size stays


def test_a_prompt_that_does_not_fit_alone_rejects_its_record(tiny_models: Any) -> None:
    stage = make_stage(tiny_models)
    stage.batcher = PromptBatcher(RunsOutOfMemory(fits=0), 4)
    out = stage(records()[:1])
    assert out[0].rejected_by == "describe" and out[0].reason.startswith("out_of_memory")
