"""The run itself: recipe, versions, models, seed, when and how long, and what each stage cost.

Everything comes from run.json, stats.json and the invocation logs. Where a stage ran on a GPU the
report gives GPU-seconds per 1,000 kept pairs: a stage counts as on a GPU when its funnel entry says
so (`device` / `gpu_seconds`, for engines that record it) or when a model it names is pinned to
`cuda`. A model on `device: auto` went wherever a GPU was; the run does not record which, and the
report says so instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

_LOG_TIME = "%Y-%m-%d %H:%M:%S,%f"


@dataclass
class StageCost:
    stage: str
    computed: int
    seconds: float
    device: str  # "cuda", "cpu", "auto (not recorded)", "no model"
    gpu_seconds: float | None  # None: not on a GPU, or not known

    @property
    def per_second(self) -> float | None:
        return self.computed / self.seconds if self.seconds > 0 else None

    def gpu_per_1k_kept(self, kept: int) -> float | None:
        return None if self.gpu_seconds is None or kept == 0 else self.gpu_seconds * 1000 / kept


@dataclass
class RunInfo:
    recipe_yaml: str
    facts: list[tuple[str, str]]  # (label, value) rows shown at the top
    models: list[dict[str, str]]
    versions: dict[str, str]
    costs: list[StageCost]


def run_info(meta: dict[str, Any], stats: dict[str, Any], logs: list[Path]) -> RunInfo:
    recipe = meta.get("recipe") or {}
    models = recipe.get("models") or {}
    started, finished = _log_span(logs)
    shard = meta.get("shard")
    facts = [
        ("imgdiff", str(meta.get("imgdiff", "?"))),
        ("git revision", str(meta.get("git_revision") or "unknown")),
        ("seed", str(meta.get("seed", recipe.get("seed", "?")))),
        ("source", str((recipe.get("source") or {}).get("type", "?"))),
        ("limit", "none" if meta.get("limit") is None else str(meta["limit"])),
        ("shard", "none" if not shard else f"{shard.get('index')}/{shard.get('count')}"),
        ("merged from", str(meta["merged_from"]) if meta.get("merged_from") else "not merged"),
        ("first started", started or "unknown"),
        ("last finished", finished or "unknown"),
        ("invocations", str(len(logs))),
        ("last invocation took", f"{float(stats.get('seconds', 0)):.1f} s"),
        ("complete", "yes" if stats.get("complete") else "no"),
    ]
    overrides = meta.get("decision_overrides") or {}
    if overrides:
        facts.append(("rethreshold settings", ", ".join(f"{k}={v}" for k, v in overrides.items())))
    return RunInfo(
        recipe_yaml=yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True),
        facts=facts,
        models=[_model_row(name, entry) for name, entry in models.items()],
        versions={str(k): str(v) for k, v in (meta.get("versions") or {}).items()},
        costs=[_cost(entry, recipe, models) for entry in stats.get("stages", [])],
    )


def _model_row(name: str, entry: dict[str, Any]) -> dict[str, str]:
    where = entry.get("id") or entry.get("path") or entry.get("model") or ""
    return {
        "name": name,
        "role": str(entry.get("role", "")),
        "backend": str(entry.get("backend", "transformers")),
        "model": str(where),
        "revision": str(entry.get("revision") or ""),
        "dtype": str(entry.get("dtype", "")),
        "device": str(entry.get("device", "auto")),
    }


def _cost(entry: dict[str, Any], recipe: dict[str, Any], models: dict[str, Any]) -> StageCost:
    stage = str(entry.get("stage", "?"))
    seconds = float(entry.get("seconds") or 0.0)
    recorded = str(entry.get("device") or "")
    if entry.get("gpu_seconds") is not None:
        return StageCost(
            stage, int(entry.get("computed") or 0), seconds, recorded or "cuda", float(entry["gpu_seconds"])
        )
    devices = {str(models[name].get("device", "auto")) for name in _model_names(recipe, stage, models)}
    if recorded.startswith("cuda") or any(d.startswith("cuda") for d in devices):
        device, gpu = "cuda", seconds
    elif "auto" in devices:
        device, gpu = "auto (not recorded)", None
    else:
        device, gpu = ("cpu" if devices else "no model"), None
    return StageCost(stage, int(entry.get("computed") or 0), seconds, device, gpu)


def _model_names(recipe: dict[str, Any], stage: str, models: dict[str, Any]) -> set[str]:
    """The `models:` entries a stage's settings name, at any depth (e.g. regions' candidates list)."""
    settings = next((e[stage] for e in recipe.get("stages", []) if isinstance(e, dict) and stage in e), {})
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str) and value in models:
            found.add(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk({k: v for k, v in (settings or {}).items() if k != "method"})
    return found


def _log_span(logs: list[Path]) -> tuple[str | None, str | None]:
    """When the first invocation started and the last one last wrote (from the log timestamps)."""
    if not logs:
        return None, None
    return _stamp(_first_line(logs[0])), _stamp(_last_line(logs[-1]))


def _first_line(path: Path) -> str:
    with path.open(encoding="utf-8", errors="replace") as handle:
        return handle.readline()


def _last_line(path: Path) -> str:
    with path.open("rb") as handle:
        handle.seek(0, 2)
        handle.seek(max(handle.tell() - 4096, 0))
        lines = handle.read().decode("utf-8", errors="replace").strip().splitlines()
    return lines[-1] if lines else ""


def _stamp(line: str) -> str | None:
    try:
        return datetime.strptime(line[:23], _LOG_TIME).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
