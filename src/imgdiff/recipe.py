"""Recipes: one YAML file (or a built-in name) that says what a run does.

Loading is strict: an unknown key, a key given twice in one mapping (YAML would silently keep the
last) or a wrong type is a UsageError naming it and the nearest valid key. `--set key=value`
overrides are applied to the raw YAML before validation, so they are checked exactly like the file.
`Recipe.to_dict()` is the resolved form written into `run.json`; loading it
back gives the same recipe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from imgdiff.errors import UsageError, did_you_mean
from imgdiff.export import EXPORTERS
from imgdiff.export.options import parse_section as parse_export_section
from imgdiff.models import ModelEntry
from imgdiff.settings import Settings, validate
from imgdiff.sources import SOURCES
from imgdiff.sources.base import Source, SourceSettings
from imgdiff.stages import FLOW, STAGES
from imgdiff.stages.base import Stage, StageSettings

TOP_KEYS = ("seed", "batch_size", "image_format", "source", "models", "stages", "export")


class RunSettings(Settings):
    seed: int = 0
    batch_size: int = 16
    image_format: Literal["png", "webp"] = "png"  # both lossless


@dataclass(frozen=True)
class StageSpec:
    name: str
    method: str
    settings: StageSettings

    @property
    def cls(self) -> type[Stage]:
        return STAGES[self.name][self.method]

    def build(self) -> Stage:
        return self.cls(self.settings)

    def models(self) -> dict[str, str]:
        """{setting: model entry name} for the model entries this stage uses."""
        roles = self.settings.model_fields_by_role()
        return {key: getattr(self.settings, key) for key in roles if getattr(self.settings, key) is not None}


@dataclass(frozen=True)
class Recipe:
    run: RunSettings
    source_type: str
    source: SourceSettings
    models: dict[str, ModelEntry] = field(default_factory=dict)
    stages: tuple[StageSpec, ...] = ()
    export: tuple[str, ...] = ()
    export_options: dict[str, Any] = field(default_factory=dict)  # `export:` as a mapping (export/options.py)

    @property
    def seed(self) -> int:
        return self.run.seed

    def build_source(self) -> Source:
        return SOURCES[self.source_type](self.source)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.run.model_dump(mode="json"),
            "source": {"type": self.source_type, **self.source.model_dump(mode="json")},
            "models": {
                name: entry.model_dump(mode="json", exclude_none=True) for name, entry in self.models.items()
            },
            "stages": [
                {s.name: {"method": s.method, **s.settings.model_dump(mode="json")}} for s in self.stages
            ],
            "export": {"formats": list(self.export), **self.export_options}
            if self.export_options
            else list(self.export),
        }


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key that appears twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if isinstance(key, list | dict):
                continue  # unhashable: the base method reports it
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key}' appears twice in one mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, where: str) -> Any:
    """The YAML text's value; a syntax error or a repeated key is a UsageError with its line."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        problem = str(getattr(exc, "problem", None) or exc).replace("\n", " ")
        raise UsageError(f"{where}: not valid YAML{at}: {problem}") from None


def builtin_recipes() -> dict[str, str]:
    """Built-in recipe name -> YAML text."""
    folder = resources.files("imgdiff") / "recipes"
    return {
        p.name.removesuffix(".yaml"): p.read_text(encoding="utf-8")
        for p in folder.iterdir()
        if p.name.endswith(".yaml")
    }


def read_raw(spec: str | Path | dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The raw mapping of a recipe file, a built-in name, or a dict; and a name for messages."""
    if isinstance(spec, dict):
        return spec, "recipe"
    path = Path(spec)
    if path.is_file():
        where = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(f"{where}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
        except OSError as exc:
            raise UsageError(f"{where}: cannot be read: {exc.strerror or exc}") from None
    elif str(spec) in builtin_recipes():
        text, where = builtin_recipes()[str(spec)], f"recipe '{spec}'"
    elif path.suffix in (".yaml", ".yml") or path.parent != Path("."):
        raise UsageError(f"recipe file '{spec}' not found")
    else:
        raise UsageError(
            f"no recipe file or built-in recipe '{spec}'{did_you_mean(str(spec), builtin_recipes())}"
        )
    raw = parse_yaml(text, where)
    if not isinstance(raw, dict):
        raise UsageError(f"{where}: a recipe is a mapping of {', '.join(TOP_KEYS)}")
    return raw, where


def load_recipe(spec: str | Path | dict[str, Any], overrides: list[str] = ()) -> Recipe:
    raw, where = read_raw(spec)
    raw = apply_overrides(raw, overrides)
    return parse_recipe(raw, where)


def parse_recipe(raw: dict[str, Any], where: str = "recipe") -> Recipe:
    for key in raw:
        if key not in TOP_KEYS:
            raise UsageError(f"{where}: unknown top-level key '{key}'{did_you_mean(str(key), TOP_KEYS)}")
    run = validate(RunSettings, {k: raw[k] for k in RunSettings.model_fields if k in raw}, f"{where}: recipe")
    if run.batch_size < 1:  # type: ignore[attr-defined]
        raise UsageError(f"{where}: batch_size: must be at least 1")
    source_type, source = _source(raw.get("source"), f"{where}: source")
    models = _models(raw.get("models") or {}, f"{where}: models")
    stages = _stages(raw.get("stages") or [], models, f"{where}: stages")
    export, export_options = parse_export_section(raw.get("export") or [], where, EXPORTERS)
    return Recipe(run, source_type, source, models, tuple(stages), tuple(export), export_options)  # type: ignore[arg-type]


def _source(raw: Any, where: str) -> tuple[str, SourceSettings]:
    if not isinstance(raw, dict) or "type" not in raw:
        raise UsageError(f"{where}: needs a type (one of: {', '.join(SOURCES)})")
    settings = dict(raw)
    kind = settings.pop("type")
    if not isinstance(kind, str) or kind not in SOURCES:
        raise UsageError(f"{where}.type: unknown source '{kind}'{did_you_mean(str(kind), SOURCES)}")
    return kind, validate(SOURCES[kind].Settings, settings, where)  # type: ignore[return-value]


def _models(raw: Any, where: str) -> dict[str, ModelEntry]:
    if not isinstance(raw, dict):
        raise UsageError(f"{where}: expected a mapping of name -> model entry")
    return {
        str(name): validate(ModelEntry, entry, f"{where}.{name}")  # type: ignore[misc]
        for name, entry in raw.items()
    }


def _stages(raw: Any, models: dict[str, ModelEntry], where: str) -> list[StageSpec]:
    if not isinstance(raw, list):
        raise UsageError(f"{where}: expected a list of {{stage: settings}} entries")
    specs: list[StageSpec] = []
    for i, item in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(item, dict) or len(item) != 1:
            raise UsageError(f"{at}: each stage is one mapping {{name: {{method: ..., ...}}}}")
        ((name, given),) = item.items()
        at = f"{at}.{name}"
        if name not in STAGES:
            known = list(STAGES)
            hint = (
                " is not available in this version"
                if name in FLOW
                else f" is unknown{did_you_mean(str(name), known)}"
            )
            raise UsageError(f"{at}: stage '{name}'{hint}")
        if any(s.name == name for s in specs):
            raise UsageError(f"{at}: stage '{name}' appears twice")
        if not isinstance(given, dict | None):
            raise UsageError(
                f"{at}: expected a mapping of settings such as {{method: {_example_method(name, given)}}}, "
                f"got {given!r:.40}"
            )
        given = dict(given or {})
        method = given.pop("method", None)
        if not isinstance(given.get("preset", ""), str):
            raise UsageError(f"{at}.preset: expected a preset name, got {given['preset']!r:.40}")
        if not isinstance(method, str) or method not in STAGES[name]:
            raise UsageError(
                f"{at}.method: {'missing' if method is None else repr(method)}, "
                f"expected one of: {', '.join(STAGES[name])}"
            )
        cls = STAGES[name][method]
        spec = StageSpec(name, method, cls.resolve_settings(given, at))
        for key, model in spec.models().items():
            role = spec.settings.model_fields_by_role()[key]
            if model not in models:
                raise UsageError(f"{at}.{key}: no model entry '{model}'{did_you_mean(str(model), models)}")
            if models[model].role != role:
                raise UsageError(f"{at}.{key}: model '{model}' has role {models[model].role}, needs {role}")
        specs.append(spec)
    order = [FLOW.index(s.name) for s in specs if s.name in FLOW]
    if order != sorted(order):
        raise UsageError(f"{where}: stages must follow the flow order {' -> '.join(FLOW)}")
    return specs


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `key=value` overrides (`seed=1`, `source.path=x`, `models.m.device=cuda`,
    `<stage>.<setting>=v`) to a copy of the raw recipe."""
    raw = yaml.safe_load(yaml.safe_dump(raw))  # deep copy of plain data
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set '{item}': expected key=value")
        value = parse_value(text)
        head, *rest = key.split(".")
        if head in ("seed", "batch_size", "image_format", "export") and not rest:
            raw[head] = value
        elif head == "export" and len(rest) == 1:  # an export option: the section becomes a mapping
            section = raw.get("export") or []
            raw["export"] = {"formats": section} if isinstance(section, list) else section
            raw["export"][rest[0]] = value
        elif head == "source" and len(rest) == 1:
            raw.setdefault("source", {})[rest[0]] = value
        elif head == "models" and len(rest) == 2:
            entries = raw.get("models") or {}
            if rest[0] not in entries:
                raise UsageError(f"--set {key}: no model entry '{rest[0]}'{did_you_mean(rest[0], entries)}")
            entries[rest[0]][rest[1]] = value
        elif len(rest) == 1:
            stages = raw.get("stages") or []
            names = [next(iter(s)) for s in stages if isinstance(s, dict) and s]
            if head not in names:
                valid = names + ["seed", "batch_size", "image_format", "source", "models", "export"]
                raise UsageError(f"--set {key}: the recipe has no stage '{head}'{did_you_mean(head, valid)}")
            entry = stages[names.index(head)]
            settings = dict(entry[head] or {})
            if rest[0] == "method" and settings.get("method") != value:
                # Another method has settings of its own: the old method's do not carry over.
                settings = {}
            entry[head] = {**settings, rest[0]: value}
        else:
            raise UsageError(
                f"--set {key}: expected seed, batch_size, image_format, export, source.<key>, "
                "models.<name>.<key> or <stage>.<setting>"
            )
    return raw


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def parse_value(text: str) -> Any:
    """A --set value as YAML (numbers, booleans, lists), with '1e-3' read as a number too."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str) and _NUMBER.match(value):
        return float(value)
    return value


def _example_method(stage: str, given: object) -> str:
    """The method to show in a shape hint: the one the user wrote, when it is a method of the stage."""
    return given if isinstance(given, str) and given in STAGES[stage] else next(iter(STAGES[stage]))
