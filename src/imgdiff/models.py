"""Model entries (the recipe's `models:` section) and the per-worker pool that loads them once.

An entry is a small picklable description; `ModelPool.get(name)` loads it on first use and hands
the same instance to every stage of the worker that names it. Loaders are registered per
(role, backend) in `LOADERS`; the issues that add each model family fill it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import model_validator

from imgdiff.errors import UsageError
from imgdiff.settings import Settings

Role = Literal["embedder", "matcher", "segmenter", "text_generator", "vl_generator", "diffusion"]
Backend = Literal["transformers", "ultralytics", "openai", "diffusers"]


class ModelEntry(Settings):
    role: Role
    backend: Backend = "transformers"
    id: str | None = None  # Hugging Face hub id
    path: str | None = None  # local folder or file
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"; does not define outputs
    base_url: str | None = None  # backend openai
    model: str | None = None  # backend openai: the served model's name

    @model_validator(mode="after")
    def _one_location(self) -> ModelEntry:
        if self.backend == "openai":
            if not (self.base_url and self.model):
                raise ValueError("backend openai needs base_url and model")
        elif (self.id is None) == (self.path is None):
            raise ValueError("give exactly one of id (hub id) or path (local)")
        return self

    def fingerprint_fields(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"device"})


Loader = Callable[[str, ModelEntry], Any]
# (role, backend) -> loader(name, entry) -> backend object
LOADERS: dict[tuple[str, str], Loader] = {}


class ModelPool:
    """Loads each named entry once per worker; stages share the instances."""

    def __init__(self, entries: dict[str, ModelEntry]) -> None:
        self.entries = entries
        self._loaded: dict[str, Any] = {}
        self.loads: dict[str, int] = {}  # how often each entry was loaded (tests count this)

    def get(self, name: str) -> Any:
        if name not in self._loaded:
            entry = self.entries[name]
            loader = LOADERS.get((entry.role, entry.backend))
            if loader is None:
                raise UsageError(
                    f"model '{name}': role {entry.role} with backend {entry.backend} "
                    "has no loader in this version of imgdiff"
                )
            self._loaded[name] = loader(name, entry)
            self.loads[name] = self.loads.get(name, 0) + 1
        return self._loaded[name]
