"""Stage generate/p2p on the tiny SD 1.5 checkpoint: contract, records, rejections, memory, rerun."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import imgdiff
import imgdiff.p2p
from conftest import tree_bytes
from imgdiff.engine.plan import stage_fingerprint
from imgdiff.errors import UsageError
from imgdiff.models import ModelEntry, ModelPool
from imgdiff.recipe import load_recipe
from imgdiff.record import Edit, Record, derive_seed
from imgdiff.stages.generate.p2p import P2PGenerate
from imgdiff.store import ImageLoader
from pairs_data import write_pairs
from stage_contract import StageContract

SIZE = 32
SETTINGS = {"preset": "sd15", "diffusion": "sd15", "size": SIZE, "steps": 2, "pairs_per_call": 4}


class TestP2PGenerateContract(StageContract):
    stage_cls = P2PGenerate
    settings = SETTINGS

    @pytest.fixture(autouse=True)
    def _tiny_model(self, tiny_models: Any) -> None:
        self.models = {"sd15": tiny_models("sd15")}


@pytest.fixture(scope="module")
def pool(tiny_models: Any) -> ModelPool:
    """One loaded tiny SD 1.5 for the module (stages share it as they would in a worker)."""
    return ModelPool({"sd15": ModelEntry(**tiny_models("sd15"))})


def _stage(pool: ModelPool, **settings: Any) -> P2PGenerate:
    stage = P2PGenerate(P2PGenerate.resolve_settings({**SETTINGS, **settings}, "test"))
    stage.setup(pool, ImageLoader(Path(".")))
    return stage


def _record(
    i: int, caption_a: str = "a photo of a cat", caption_b: str = "a photo of a dog", **kw: Any
) -> Record:
    rid = f"{i:012x}"
    fields: dict[str, Any] = {"kind": "replacement", "edit": Edit("cat", "dog"), **kw}
    return Record(rid, i, derive_seed(0, rid), caption_a=caption_a, caption_b=caption_b, **fields)


def _batch(n: int = 3) -> list[Record]:
    animals = ["cat", "dog", "man", "woman", "bus"]
    return [
        _record(
            i, f"a {animals[i]} on a bench", f"a {animals[i + 1]} on a bench", edit=Edit(*animals[i : i + 2])
        )
        for i in range(n)
    ]


def _pixels(records: list[Record]) -> list[dict[str, np.ndarray]]:
    return [{k: np.asarray(v) for k, v in r.artifacts.items()} for r in records]


def test_generation_setting_seed_and_pixels_in_the_record(pool: ModelPool) -> None:
    records = _stage(pool)(_batch(3))
    entry = pool.entries["sd15"]
    for record in records:
        assert record.kept, record.reason
        a, b, prior = (record.artifacts[k] for k in ("a", "b", "prior"))
        assert a.shape == b.shape == (SIZE, SIZE, 3) and a.dtype == b.dtype == np.uint8
        assert prior.dtype == np.float16 and prior.ndim == 3 and prior.shape[0] == 2
        assert prior.min() >= 0 and prior.max() <= 1
        assert not np.array_equal(a, b)  # the edit changed the picture
        generation = record.generation
        assert generation["seed"] == record.seed
        assert generation["model"] == "sd15" and generation["path"] == entry.path
        assert generation["family"] == "sd15" and generation["dtype"] == "float32"
        assert generation["scheduler"] == type(pool.get("sd15").pipe.scheduler).__name__
        expected = {"steps": 2, "guidance": 7.5, "height": SIZE, "width": SIZE, "cross_replace": 1.0}
        assert {k: generation[k] for k in expected} == expected
        assert generation["self_replace"] == 0.4 and generation["self_max_queries"] == 256
    assert len({r.artifacts["a"].tobytes() for r in records}) == 3  # each pair from its own seed
    # The record round-trips through JSON with its generation dict.
    assert Record.from_dict(records[0].to_dict()).generation == records[0].generation


def test_same_seed_same_pair_whatever_the_other_records(pool: ModelPool) -> None:
    alone = _stage(pool, pairs_per_call=1)(_batch(3))
    together = _stage(pool, pairs_per_call=3)(_batch(3))
    for x, y in zip(_pixels(alone), _pixels(together), strict=True):
        for name in ("a", "b"):  # batch composition moves pixels by float rounding at most
            assert np.abs(x[name].astype(int) - y[name].astype(int)).max() <= 2
        np.testing.assert_allclose(x["prior"].astype(np.float32), y["prior"], atol=2e-3)


def test_bad_prompts_and_missing_edits_are_rejected_and_the_rest_generated(pool: ModelPool) -> None:
    long_caption = " ".join(["a cat on a table"] * 16)  # over CLIP's window of 75 tokens
    records = [
        _record(0, caption_b=""),
        _record(1, caption_a=long_caption),
        _record(2, edit=None),
        _record(3, edit=Edit("", "dog")),
        _record(4),
    ]
    _stage(pool)(records)
    reasons = [(r.reason or "").split(":")[0] for r in records]
    assert reasons == ["empty_prompt", "prompt_too_long", "missing_edit", "missing_edit", ""]
    assert all(r.rejected_by == "generate" and not r.artifacts for r in records[:4])
    tokens = imgdiff.p2p.prompt_tokens(pool.get("sd15"), long_caption)
    assert tokens > 75 and f"caption_a has {tokens} tokens" in records[1].reason
    assert records[4].kept and set(records[4].artifacts) == {"a", "b", "prior"}


@pytest.mark.parametrize(("says_which", "calls"), [(True, [4, 3]), (False, [4, 2, 1, 1, 2])])
def test_a_prompt_the_engine_refuses_rejects_only_its_record(
    pool: ModelPool, monkeypatch: pytest.MonkeyPatch, says_which: bool, calls: list[int]
) -> None:
    reference = _stage(pool, pairs_per_call=1)(_batch(4))
    real = imgdiff.p2p.generate_pairs
    seen = []

    def refusing(model: Any, requests: list, config: Any) -> list:
        seen.append(len(requests))
        refused = [i for i, r in enumerate(requests) if r.prompt_b == "a man on a bench"]
        if refused:
            index = refused[0] if says_which else None
            raise imgdiff.p2p.PromptError("untokenizable: 'man' does not tokenise word by word", index)
        return real(model, requests, config)

    monkeypatch.setattr(imgdiff.p2p, "generate_pairs", refusing)
    records = _stage(pool, pairs_per_call=4)(_batch(4))
    assert [r.kept for r in records] == [True, False, True, True]
    assert records[1].reason == "untokenizable: 'man' does not tokenise word by word"
    assert seen == calls  # without the index: halved until the refused pair stood alone
    assert not records[1].artifacts
    for x, y in zip(_pixels(records[:1] + records[2:]), _pixels(reference[:1] + reference[2:]), strict=True):
        assert x.keys() == y.keys() == {"a", "b", "prior"}
        for name in x:
            assert np.abs(x[name].astype(float) - y[name].astype(float)).max() <= 2


def test_nan_images_are_rejected(pool: ModelPool, monkeypatch: pytest.MonkeyPatch) -> None:
    vae = pool.get("sd15").pipe.vae
    decode = vae.decode

    def nan_decode(latents: Any, *args: Any, **kwargs: Any) -> Any:
        return decode(latents * float("nan"), *args, **kwargs)

    monkeypatch.setattr(vae, "decode", nan_decode)
    records = _stage(pool)(_batch(2))
    assert [r.reason for r in records] == ["nonfinite_image: NaN or inf in the latents or images"] * 2
    assert all(not r.artifacts and r.generation["seed"] == r.seed for r in records)


def test_images_the_safety_checker_blanked_are_rejected(
    pool: ModelPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    pipe = pool.get("sd15").pipe

    def flag_second_image(image: torch.Tensor, device: Any, dtype: Any) -> Any:
        # as diffusers' checker does: the flagged image (b of the first pair) comes back black, finite
        image = image.clone()
        image[1] = 0
        return image, [i == 1 for i in range(image.shape[0])]

    monkeypatch.setattr(pipe, "run_safety_checker", flag_second_image)
    records = _stage(pool)(_batch(2))
    assert records[0].reason == "safety_checker: the pipeline's safety checker blanked image a or b"
    assert not records[0].artifacts and records[0].generation["seed"] == records[0].seed
    assert records[1].kept and set(records[1].artifacts) == {"a", "b", "prior"}


def _failing_pipeline(monkeypatch: pytest.MonkeyPatch, pool: ModelPool, above: int, times: int) -> list[int]:
    """Make the pipeline raise CUDA out-of-memory `times` times for calls of more than `above`
    pairs; returns the pairs per call it saw."""
    import torch

    pipe = pool.get("sd15").pipe
    cls = type(pipe)
    real = cls.__call__
    seen: list[int] = []

    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        pairs = _pairs_in_call(args, kwargs)
        seen.append(pairs)
        if pairs > above and sum(1 for n in seen if n > above) <= times:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(cls, "__call__", call)
    return seen


def _pairs_in_call(args: tuple, kwargs: dict[str, Any]) -> int:
    latents = kwargs.get("latents")
    if latents is not None:
        return latents.shape[0] // 2
    prompts = kwargs.get("prompt", args[0] if args else None)
    if prompts is not None:
        return len(prompts) // 2
    return kwargs["prompt_embeds"].shape[0] // 2


@pytest.mark.parametrize(("pairs", "calls"), [(4, [4, 2, 2]), (3, [3, 2, 1])])
def test_out_of_memory_halves_pairs_per_call_and_retries(
    pool: ModelPool,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    pairs: int,
    calls: list[int],
) -> None:
    expected = _stage(pool, pairs_per_call=2)(_batch(pairs))
    seen = _failing_pipeline(monkeypatch, pool, above=2, times=1)
    stage = _stage(pool, pairs_per_call=4)
    with caplog.at_level(logging.WARNING, logger="imgdiff"):
        records = stage(_batch(pairs))
    assert seen == calls and stage.pairs_per_call == 2
    assert "generate: pairs_per_call: CUDA out of memory; lowered to 2 per call" in caplog.text
    assert all(r.kept for r in records)
    for x, y in zip(_pixels(records), _pixels(expected), strict=True):  # same calls, same bytes
        assert x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x)
    seen.clear()
    stage(_batch(pairs))
    assert max(seen) == 2  # the lowered size stays for the worker's later batches


def test_out_of_memory_at_one_pair_rejects_that_record_and_goes_on(
    pool: ModelPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _failing_pipeline(monkeypatch, pool, above=0, times=2)
    stage = _stage(pool, pairs_per_call=2)
    records = stage(_batch(3))
    # 2 -> OOM, halve to 1 -> OOM (reject r0), 1 -> r1 ok; then r2 alone ok.
    assert seen == [2, 1, 1, 1] and stage.pairs_per_call == 1
    assert [r.reason for r in records] == ["out_of_memory: CUDA out of memory at 1 pair per call", None, None]
    assert records[1].kept and records[2].kept


def test_a_preset_for_another_family_fails_setup_with_one_line(pool: ModelPool) -> None:
    stage = P2PGenerate(P2PGenerate.resolve_settings({"diffusion": "sd15"}, "test"))  # paper: SDXL
    with pytest.raises(
        UsageError, match="preset 'paper' is for sdxl .* use preset sd15 or set generate.family"
    ):
        stage.setup(pool, ImageLoader(Path(".")))
    stage = P2PGenerate(P2PGenerate.resolve_settings({"diffusion": "sd15", "family": None}, "test"))
    stage.setup(pool, ImageLoader(Path(".")))


def test_presets_and_settings() -> None:
    paper = P2PGenerate.resolve_settings({"diffusion": "m"}, "test")
    assert (paper.size, paper.steps, paper.guidance, paper.cross_replace, paper.self_replace) == (
        1024,
        50,
        7.5,
        1.0,
        0.4,
    )
    # Prompt-to-Prompt's own rules, the layer limit from the width, the research code's word windows
    assert (paper.alignment, paper.step_rule, paper.self_max_queries) == ("original", "original", None)
    assert paper.cross_replace_words == {"confetti": 0.8}
    turbo = P2PGenerate.resolve_settings({"diffusion": "m", "preset": "turbo"}, "test")
    assert (turbo.family, turbo.size, turbo.steps, turbo.guidance) == ("sdxl", 512, 4, 0.0)
    assert (turbo.alignment, turbo.step_rule, turbo.cross_replace_words) == ("whole-word", "proportional", {})
    sd15 = P2PGenerate.resolve_settings({"diffusion": "m", "preset": "sd15"}, "test")
    assert (sd15.family, sd15.size, sd15.steps, sd15.alignment, sd15.step_rule) == (
        "sd15",
        512,
        50,
        "original",
        "original",
    )
    assert sd15.self_max_queries == 256
    # local blend is off in every preset; its threshold and start are the original's
    assert not paper.local_blend and not turbo.local_blend and not sd15.local_blend
    assert (paper.blend_threshold, paper.blend_start) == (0.3, 0.0)
    with pytest.raises(UsageError, match="size: Input should be a multiple of 8"):
        P2PGenerate.resolve_settings({"diffusion": "m", "size": 100}, "test")
    with pytest.raises(UsageError, match="unknown preset 'fast'"):
        P2PGenerate.resolve_settings({"diffusion": "m", "preset": "fast"}, "test")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"alignment": "difflib"}, r"test\.alignment: Input should be 'original' or 'whole-word'"),
        ({"step_rule": "ceil"}, r"test\.step_rule: Input should be 'original' or 'proportional'"),
        ({"self_replace": [0.6, 0.2]}, r"test\.self_replace: a step window needs 0 <= start <= end <= 1"),
        ({"cross_replace": 1.5}, r"test\.cross_replace: a step window needs"),
        ({"self_replace": [0.1, 0.2, 0.3]}, r"test\.self_replace: a step window is a fraction or a"),
        ({"cross_replace_words": {"dog": [0.5, 0.1]}}, r"cross_replace_words: dog: a step window needs"),
        ({"cross_replace_words": {"hot dog": 0.5}}, r"cross_replace_words: a per-word window's key is one"),
        ({"self_max_queries": -1}, r"test\.self_max_queries"),
        ({"blend_threshold": 1.0}, r"test\.blend_threshold: Input should be less than 1"),
        ({"blend_start": -0.1}, r"test\.blend_start: Input should be greater than or equal to 0"),
    ],
)
def test_bad_edit_settings_are_one_line_errors(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message) as error:
        P2PGenerate.resolve_settings({"diffusion": "m", **settings}, "test")
    assert "\n" not in str(error.value)


def test_the_edit_settings_and_resolved_steps_are_in_the_record(pool: ModelPool) -> None:
    words = {"bench": [0.25, 1.0]}
    stage = _stage(pool, steps=4, self_replace=[0.25, 0.75], self_max_queries=None, cross_replace_words=words)
    (record,) = stage(_batch(1))
    generation = record.generation
    assert {k: generation[k] for k in ("alignment", "step_rule", "cross_replace_words")} == {
        "alignment": "original",
        "step_rule": "original",
        "cross_replace_words": {"bench": [0.25, 1.0]},
    }
    assert generation["self_replace"] == [0.25, 0.75] and generation["cross_replace"] == 1.0
    # the width's limit (ceil(32 / 32) ** 2), and the steps the original rule edits of 4
    assert generation["self_max_queries"] == 1 and generation["self_max_queries_from_size"] is True
    assert generation["cross_steps"] == [0, 4] and generation["self_steps"] == [1, 3]
    assert Record.from_dict(record.to_dict()).generation == generation


def test_the_alignment_changes_image_b_only(pool: ModelPool) -> None:
    # "boarder" is shared by both words: the original alignment keeps its source attention, the
    # whole-word one does not; image a is the same either way
    record = _record(
        0, "a snowboarder on a bench", "a skateboarder on a bench", edit=Edit("snowboarder", "skateboarder")
    )
    made = {}
    for alignment in ("original", "whole-word"):
        (done,) = _stage(pool, alignment=alignment)([Record.from_dict(record.to_dict())])
        made[alignment] = done.artifacts
    assert np.array_equal(made["original"]["a"], made["whole-word"]["a"])
    assert not np.array_equal(made["original"]["b"], made["whole-word"]["b"])


def _recipe(pairs: Path, model: dict[str, Any], **generate: Any) -> dict[str, Any]:
    return {
        "seed": 0,
        "batch_size": 4,
        "source": {"type": "pairs", "path": str(pairs)},
        "models": {"sd15": model},
        "stages": [{"generate": {"method": "p2p", **SETTINGS, **generate}}],
    }


def test_pairs_per_call_stays_out_of_the_fingerprint(tmp_path: Path) -> None:
    model = {"role": "diffusion", "backend": "diffusers", "path": str(tmp_path)}

    def fingerprint(**generate: Any) -> str:
        recipe = load_recipe(_recipe(tmp_path / "p.jsonl", model, **generate))
        return stage_fingerprint(recipe.stages[0], recipe, "upstream")

    assert fingerprint(pairs_per_call=1) == fingerprint(pairs_per_call=8)
    assert fingerprint(steps=3) != fingerprint()


@pytest.mark.parametrize(
    "changed",
    [
        {"alignment": "whole-word"},
        {"step_rule": "proportional"},
        {"cross_replace": [0.0, 0.9]},
        {"cross_replace_words": {"dog": 0.8}},
        {"cross_replace_words": {"cat": 0.5}},
        {"self_replace": [0.1, 0.4]},
        {"self_max_queries": None},
        {"local_blend": True},
    ],
)
def test_the_edit_settings_are_in_the_fingerprint(tmp_path: Path, changed: dict[str, Any]) -> None:
    model = {"role": "diffusion", "backend": "diffusers", "path": str(tmp_path)}

    def fingerprint(**generate: Any) -> str:
        recipe = load_recipe(_recipe(tmp_path / "p.jsonl", model, **generate))
        return stage_fingerprint(recipe.stages[0], recipe, "upstream")

    base = {"cross_replace_words": {"dog": 0.5}}  # sd15's preset: original rules, limit 256
    assert fingerprint(**{**base, **changed}) != fingerprint(**base)


def test_runs_write_the_prior_and_rerun_to_the_same_bytes(tmp_path: Path, tiny_models: Any) -> None:
    pairs = write_pairs(tmp_path / "pairs", 6)
    recipe = _recipe(pairs, tiny_models("sd15"))
    first, second = tmp_path / "first", tmp_path / "second"
    imgdiff.run(recipe, first)
    records = imgdiff.load_records(first)
    kept = [r for r in records if r.kept]
    assert len(kept) == 5 and [r.reason for r in records if not r.kept] == [
        "missing_edit: no changed object (edit.old) from the edit stage"
    ]
    for record in kept:
        assert record.aux["prior"] == f"aux/{record.id[:2]}/{record.id}_prior.npy"
        prior = np.load(first / record.aux["prior"], allow_pickle=False)
        assert prior.dtype == np.float16 and prior.ndim == 3 and prior.shape[0] == 2
        assert record.images["a"] == f"images/{record.id[:2]}/{record.id}_a.png"
        assert record.generation["seed"] == record.seed
    imgdiff.run(recipe, second)
    assert tree_bytes(first, "records.jsonl", "images", "aux") == tree_bytes(
        second, "records.jsonl", "images", "aux"
    )


def test_local_blend_in_the_record_and_its_mask_as_an_artifact(pool: ModelPool) -> None:
    plain = _stage(pool)(_batch(2))
    # 32 px: the tiny UNet's maps are 4x4 and nearly flat, so a high threshold leaves part outside
    records = _stage(pool, local_blend=True, blend_threshold=0.9, blend_start=0.5)(
        [*_batch(2), _record(7, "a photo of a cat", "a photo of a dog", edit=Edit("zebra", "dog"))]
    )
    for record, before in zip(records[:2], plain, strict=True):
        assert record.kept, record.reason
        generation = record.generation
        assert generation["local_blend"] is True and generation["blend_threshold"] == 0.9
        assert generation["blend_start"] == 0.5 and generation["blend_steps"] == [1, 2]  # int(0.5 * 2)
        mask = record.artifacts["blend_mask"]
        assert mask.dtype == np.bool_ and mask.shape == (SIZE // 2, SIZE // 2)  # the tiny VAE's 2x latent
        assert 0 < mask.mean() < 1
        assert np.array_equal(record.artifacts["a"], before.artifacts["a"])  # image a is untouched
        assert not np.array_equal(record.artifacts["b"], before.artifacts["b"])
        assert "local_blend" not in before.generation and "blend_mask" not in before.artifacts
    # the words are not in the captions: made without local blend, and the record says so
    assert records[2].kept and records[2].generation["local_blend"] is False
    assert "blend_mask" not in records[2].artifacts and "prior" not in records[2].artifacts


def test_local_blend_survives_out_of_memory_halving(pool: ModelPool, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = {"local_blend": True, "blend_threshold": 0.9}
    expected = _stage(pool, pairs_per_call=2, **settings)(_batch(3))
    seen = _failing_pipeline(monkeypatch, pool, above=2, times=1)
    stage = _stage(pool, pairs_per_call=4, **settings)
    records = stage(_batch(3))
    assert seen == [3, 2, 1] and stage.pairs_per_call == 2
    for record, want in zip(records, expected, strict=True):  # same calls, same bytes, masks included
        assert record.generation["local_blend"] is True
        assert record.artifacts.keys() == want.artifacts.keys() >= {"a", "b", "prior", "blend_mask"}
        assert all(np.array_equal(record.artifacts[k], want.artifacts[k]) for k in record.artifacts)


def test_a_run_with_local_blend_writes_the_mask_beside_the_prior(tmp_path: Path, tiny_models: Any) -> None:
    pairs = write_pairs(tmp_path / "pairs", 3)
    recipe = _recipe(pairs, tiny_models("sd15"), local_blend=True, blend_threshold=0.9)
    imgdiff.run(recipe, tmp_path / "run")
    kept = [r for r in imgdiff.load_records(tmp_path / "run") if r.kept]
    assert kept
    for record in kept:
        assert record.generation["local_blend"] is True and record.generation["blend_threshold"] == 0.9
        assert record.aux["blend_mask"] == f"aux/{record.id[:2]}/{record.id}_blend_mask.npy"
        mask = np.load(tmp_path / "run" / record.aux["blend_mask"], allow_pickle=False)
        assert mask.dtype == np.bool_ and mask.shape == (SIZE // 2, SIZE // 2)


def test_the_blend_settings_define_the_fingerprint_only_when_blend_is_on(tmp_path: Path) -> None:
    model = {"role": "diffusion", "backend": "diffusers", "path": str(tmp_path)}

    def fingerprint(**generate: Any) -> str:
        recipe = load_recipe(_recipe(tmp_path / "p.jsonl", model, **generate))
        return stage_fingerprint(recipe.stages[0], recipe, "upstream")

    # off: as before local blend existed (the runs made then resume), whatever its other settings
    assert fingerprint() == fingerprint(local_blend=False, blend_threshold=0.5, blend_start=0.2)
    on = fingerprint(local_blend=True)
    assert on != fingerprint()
    assert (
        on
        != fingerprint(local_blend=True, blend_threshold=0.5)
        != fingerprint(local_blend=True, blend_start=0.2)
    )
