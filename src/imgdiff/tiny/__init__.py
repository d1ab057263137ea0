"""Checkpoints built in code with random weights: `imgdiff models make-tiny DIR` writes a tiny one
of every model family imgdiff loads, in the formats the real ones come in, plus `DIR/models.yaml`
(entries pointing at them) and `DIR/recipe.yaml` (the `img-diff` recipe on them when it exists, else
the quickstart with those entries). The test suite loads exactly these through the normal loading
path; users can smoke-test an install with them offline. Random weights give garbage text and images:
they show that everything loads, runs and is wired, not that outputs are good.

One module per family owns its builder (`make_tiny(out: Path) -> Path`, returning the folder or file
an entry's `path` names): `clip`, `blip`, `fastsam`, `text` (the chat LM), `llava`, `diffusion`,
`editing` (the instruction editors; with any of them, `DIR/photo-edit-recipe.yaml` runs the
`photo-edit` recipe on them and on the stand-in photos `photos` writes to `DIR/photos/`);
`vocab` builds their vocabularies and `seeded` their deterministic weights. `llava`, `diffusion` and
`editing` also hold full-size architectures for benchmarks. This package sits above `imgdiff.models` (it
imports the backends, never the reverse) and above `imgdiff.recipe` (`tiny_recipe`); this module only
lists the builders and writes the recipe.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

from imgdiff.errors import UsageError, did_you_mean
from imgdiff.tiny.photos import write_photos

# entry name -> (entry fields without the path, "module:builder")
TINY: dict[str, tuple[dict[str, Any], str]] = {
    "clip": ({"role": "embedder"}, "imgdiff.tiny.clip:make_tiny"),
    "blip": ({"role": "matcher"}, "imgdiff.tiny.blip:make_tiny"),
    "fastsam": (
        {"role": "segmenter", "backend": "ultralytics", "imgsz": 128},
        "imgdiff.tiny.fastsam:make_tiny",
    ),
    "llm": ({"role": "text_generator"}, "imgdiff.tiny.text:make_tiny"),
    "llava": ({"role": "vl_generator"}, "imgdiff.tiny.llava:make_tiny"),
    "sd15": ({"role": "diffusion", "backend": "diffusers"}, "imgdiff.tiny.diffusion:make_tiny_sd15"),
    "sdxl": ({"role": "diffusion", "backend": "diffusers"}, "imgdiff.tiny.diffusion:make_tiny_sdxl"),
    "ip2p": ({"role": "editor", "backend": "diffusers"}, "imgdiff.tiny.editing:make_tiny_instruct_pix2pix"),
    "kontext": ({"role": "editor", "backend": "diffusers"}, "imgdiff.tiny.editing:make_tiny_flux_kontext"),
    "qwen_edit": (
        {"role": "editor", "backend": "diffusers"},
        "imgdiff.tiny.editing:make_tiny_qwen_image_edit",
    ),
    "sdxl_inpaint": (
        {"role": "inpainter", "backend": "diffusers"},
        "imgdiff.tiny.diffusion:make_tiny_sdxl_inpaint",
    ),
}
# Which tiny editor stands for each `generate`/`instruct` preset's family.
TINY_EDITORS = {"instruct-pix2pix": "ip2p", "flux-kontext": "kontext", "qwen-image-edit": "qwen_edit"}


def make_tiny(
    out: Path,
    names: Iterable[str] | None = None,
    on_built: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Build the named tiny models (all by default) under `out`, write `models.yaml`,
    `captions.txt` and `recipe.yaml` there, and return the model entries. `on_built(name, entry)`
    is called after each model (progress)."""
    chosen = list(names) if names is not None else list(TINY)
    entries = {}
    for name in chosen:
        entries[name] = build_tiny(name, out)
        if on_built is not None:
            on_built(name, entries[name])
    (out / "models.yaml").write_text(yaml.safe_dump({"models": entries}, sort_keys=False))
    (out / "captions.txt").write_text("\n".join(TINY_CAPTIONS) + "\n")
    recipe = tiny_recipe(entries, out / "captions.txt")
    (out / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    if any(entry["role"] == "editor" for entry in entries.values()):
        photo_recipe = tiny_photo_recipe(entries, *write_photos(out / "photos"))
        (out / "photo-edit-recipe.yaml").write_text(yaml.safe_dump(photo_recipe, sort_keys=False))

    from imgdiff.recipe import builtin_recipes

    if "img-diff-removal" in builtin_recipes():  # object removal's twin, when its models are built
        removal = tiny_recipe(entries, out / "captions.txt", "img-diff-removal")
        if any(name == "remove" for stage in removal.get("stages") or [] for name in stage):
            (out / "recipe-removal.yaml").write_text(yaml.safe_dump(removal, sort_keys=False))
    return entries


def build_tiny(name: str, out: Path) -> dict[str, Any]:
    """Build one tiny model at `out/<name>` and return its model entry."""
    if name not in TINY:
        raise UsageError(f"make-tiny: unknown model '{name}'{did_you_mean(name, TINY)}")
    fields, builder = TINY[name]
    module, _, function = builder.partition(":")
    out.mkdir(parents=True, exist_ok=True)
    _quiet_progress_bars()  # a bar per sub-millisecond save is noise
    made = getattr(importlib.import_module(module), function)(out / name)
    return {**fields, "path": str(Path(made).resolve())}


def tiny_recipe(
    entries: dict[str, dict[str, Any]], captions: Path | None = None, builtin: str = "img-diff"
) -> dict[str, Any]:
    """The `img-diff` recipe (or another `builtin` one) on the tiny models, at a size they can run:
    each of its model entries is replaced by the tiny entry of the same role (SDXL for diffusion
    when built). When the tiny set lacks a role it needs, the weight-free quickstart with the tiny
    entries listed."""
    from imgdiff.recipe import builtin_recipes

    recipes = builtin_recipes()
    by_role: dict[str, str] = {}
    for name, entry in sorted(entries.items(), key=lambda item: item[0] != "sdxl"):
        by_role.setdefault(entry["role"], name)
    raw = yaml.safe_load(recipes.get(builtin, recipes["quickstart"]))
    named = raw.get("models") or {}
    if any(entry["role"] not in by_role for entry in named.values()):
        raw, named = yaml.safe_load(recipes["quickstart"]), {}
    raw["models"] = {
        **{name: dict(entry) for name, entry in entries.items()},
        **{name: dict(entries[by_role[entry["role"]]]) for name, entry in named.items()},
    }
    if captions is not None and raw["source"].get("type") == "captions":
        raw["source"]["path"] = str(captions.resolve())
    for stage in raw.get("stages") or []:
        ((name, settings),) = stage.items()
        if name in ("generate", "remove") and settings is not None:
            settings.update({"size": 64, "steps": 2})
        if settings is not None and (name, settings.get("method")) in RANDOM_SCORE_THRESHOLDS:
            # Random weights score noise: the smoke run opens the model-score thresholds so that
            # pairs reach every stage (the geometry still runs; the scores mean nothing).
            settings.update(RANDOM_SCORE_THRESHOLDS[name, settings["method"]])
        if name == "edit" and settings is not None:
            # A random-weight LLM writes noise that validation rightly rejects, which would stop the
            # smoke run before any image is made: the weight-free lexicon edits instead.
            stage[name] = {"method": "lexicon"}
    return raw


# Model-score thresholds the tiny recipe opens, per (stage, method).
RANDOM_SCORE_THRESHOLDS: dict[tuple[str, str], dict[str, Any]] = {
    ("pair_filter", "clip"): {"similarity_gt": None, "similarity_lt": None},
    ("regions", "semantic"): {"crop_similarity_lt": None, "match_rule": "none"},
    ("remove", "inpaint"): {"changed_below": None, "present_before_min": None, "present_after_max": None},
}


def tiny_photo_recipe(entries: dict[str, dict[str, Any]], images: Path, captions: Path) -> dict[str, Any]:
    """The `photo-edit` recipe on the tiny models and stand-in photos: its editor is the tiny one of
    the preset's family (else any tiny editor, with the preset that fits it), 64 px, 2 steps, and
    lexicon edits (a random-weight LLM's edits are all rejected)."""
    from imgdiff.recipe import builtin_recipes

    raw = yaml.safe_load(builtin_recipes()["photo-edit"])
    raw["source"].update(images=str(images.resolve()), path=str(captions.resolve()))
    editors = [name for name, entry in entries.items() if entry["role"] == "editor"]
    for stage in raw["stages"]:
        ((name, settings),) = stage.items()
        if name == "edit":
            stage[name] = {"method": "lexicon"}
        if name == "generate":
            wanted = TINY_EDITORS.get(settings.get("preset", ""))
            editor = wanted if wanted in entries else editors[0]
            family = next(f for f, n in TINY_EDITORS.items() if n == editor)
            settings.update({"editor": editor, "preset": family, "resolution": 64, "steps": 2})
    raw["models"] = {name: dict(entry) for name, entry in entries.items()}
    return raw


def _quiet_progress_bars() -> None:
    try:
        from transformers.utils import logging as transformers_logging
    except ImportError:
        return
    transformers_logging.disable_progress_bar()


# Captions for the tiny recipe's `captions` source (tiny models make noise of any caption).
TINY_CAPTIONS = (
    "a cat sitting on a wooden bench",
    "a red car parked next to a tree",
    "a man standing in front of a bus",
    "an apple on a white plate",
)
