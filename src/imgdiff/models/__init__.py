"""Model entries (the recipe's `models:` section) and the per-worker pool that loads them once.

An entry is a small picklable description; `ModelPool.get(name)` loads it on first use and hands
the same instance to every stage of the worker that names it. Loaders are registered per
(role, backend) in `LOADERS`, as "module:function" strings so that importing imgdiff never imports
torch; `roles.py` says what each role's backend object offers, `loading.py` finds the weights.

| role | backend | module |
|---|---|---|
| embedder (CLIP) | transformers | `clip.py` |
| matcher (BLIP retrieval) | transformers | `blip.py` |
| segmenter (FastSAM) | ultralytics | `fastsam.py` |
| text_generator | transformers / openai | `text.py` / `openai_chat.py` |
| vl_generator | transformers / openai | `vision_text.py` / `openai_chat.py` |
| diffusion | diffusers | `diffusion.py` |
| editor (instruction editing) | diffusers | `editing.py` |
| inpainter | opencv / diffusers | `inpaint.py` |
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from imgdiff.errors import UsageError
from imgdiff.settings import Settings

Role = Literal[
    "embedder", "matcher", "segmenter", "text_generator", "vl_generator", "diffusion", "editor", "inpainter"
]
Backend = Literal["transformers", "ultralytics", "openai", "diffusers", "opencv"]


class ModelEntry(Settings):
    role: Role
    backend: Backend = "transformers"
    id: str | None = None  # Hugging Face hub id
    path: str | None = None  # local folder or file
    revision: str | None = None  # hub revision (branch, tag or commit); None: the default branch
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"; does not define outputs
    base_url: str | None = None  # backend openai
    model: str | None = None  # backend openai: the served model's name
    api_key_env: str = "OPENAI_API_KEY"  # backend openai: the environment variable holding the key
    timeout_s: float = Field(120.0, gt=0)  # backend openai: per request
    max_retries: int = Field(5, ge=0)  # backend openai: on 429, 5xx and dropped connections
    concurrency: int = Field(8, ge=1)  # backend openai: requests in flight at once
    # backend ultralytics (segmenter) inference settings; None takes the paper's (METHOD.md 3.3:
    # FastSAM-x, imgsz 1024, conf 0.05, iou 0.5) or ultralytics' default (max_det 300).
    imgsz: int | None = Field(None, gt=0)
    conf: float | None = Field(None, ge=0, le=1)
    iou: float | None = Field(None, ge=0, le=1)
    max_det: int | None = Field(None, ge=1)

    @field_validator("device")
    @classmethod
    def _device_form(cls, device: str) -> str:
        kind, colon, number = device.partition(":")
        if device not in ("auto", "cpu") and not (kind == "cuda" and (not colon or number.isdigit())):
            raise ValueError("expected auto, cpu, cuda or cuda:N")
        return device

    @model_validator(mode="after")
    def _one_location(self) -> ModelEntry:
        if self.backend == "openai":
            if not (self.base_url and self.model):
                raise ValueError("backend openai needs base_url and model")
        elif self.backend == "opencv":  # weight-free: nothing to locate
            if self.id is not None or self.path is not None:
                raise ValueError("backend opencv has no weights: give neither id nor path")
        elif (self.id is None) == (self.path is None):
            raise ValueError("give exactly one of id (hub id) or path (local)")
        return self

    def where(self) -> str:
        """Where the entry points, for messages."""
        if self.backend == "openai":
            return f"{self.model} at {self.base_url}"
        if self.backend == "opencv":
            return "OpenCV (no weights)"
        return f"path {self.path}" if self.path else f"hub id {self.id}"

    def fingerprint_fields(self) -> dict[str, Any]:
        # How to reach a server (timeouts, retries, concurrency, key) does not define outputs.
        runtime = {"device", "api_key_env", "timeout_s", "max_retries", "concurrency"}
        return self.model_dump(mode="json", exclude=runtime, exclude_none=True)


Loader = Callable[[str, ModelEntry], Any]
# (role, backend) -> loader(name, entry) -> backend object; a "module:function" string is imported
# on first use.
LOADERS: dict[tuple[str, str], Loader | str] = {
    ("embedder", "transformers"): "imgdiff.models.clip:load",
    ("matcher", "transformers"): "imgdiff.models.blip:load",
    ("segmenter", "ultralytics"): "imgdiff.models.fastsam:load",
    ("text_generator", "transformers"): "imgdiff.models.text:load",
    ("vl_generator", "transformers"): "imgdiff.models.vision_text:load",
    ("text_generator", "openai"): "imgdiff.models.openai_chat:load_text",
    ("vl_generator", "openai"): "imgdiff.models.openai_chat:load_vision_text",
    ("diffusion", "diffusers"): "imgdiff.models.diffusion:load",
    ("editor", "diffusers"): "imgdiff.models.editing:load",
    ("inpainter", "opencv"): "imgdiff.models.inpaint:load_opencv",
    ("inpainter", "diffusers"): "imgdiff.models.inpaint:load_diffusers",
}


def loader_for(entry: ModelEntry, name: str) -> Loader:
    loader = LOADERS.get((entry.role, entry.backend))
    if loader is None:
        backends = sorted(b for r, b in LOADERS if r == entry.role)
        raise UsageError(
            f"model '{name}': role {entry.role} has no backend {entry.backend} "
            f"(available: {', '.join(backends) or 'none'})"
        )
    if isinstance(loader, str):
        module, _, function = loader.partition(":")
        loader = getattr(importlib.import_module(module), function)
    return loader  # type: ignore[return-value]


def missing_package(name: str, exc: ModuleNotFoundError) -> UsageError:
    """The one-line install hint for a model whose backend package is not installed."""
    package = (exc.name or "a package").partition(".")[0]
    extra = "segment" if package == "ultralytics" else "models"
    return UsageError(
        f"model '{name}' needs {package}, which is not installed: "
        f"pip install -c constraints.txt 'imgdiff[{extra}]'"
    )


class ModelPool:
    """Loads each named entry once per worker; stages share the instances."""

    def __init__(self, entries: dict[str, ModelEntry]) -> None:
        self.entries = entries
        self._loaded: dict[str, Any] = {}
        self.loads: dict[str, int] = {}  # how often each entry was loaded (tests count this)

    def get(self, name: str) -> Any:
        if name not in self._loaded:
            entry = self.entries[name]
            try:
                self._loaded[name] = loader_for(entry, name)(name, entry)
            except ModuleNotFoundError as exc:  # loaders import their backend lazily, inside `load` too
                if (exc.name or "").partition(".")[0] == "imgdiff":
                    raise  # our own module missing is a bug, not a missing extra
                raise missing_package(name, exc) from None
            except UsageError as exc:  # e.g. a device error from `device_of`, which knows no names
                if str(exc).startswith(f"model '{name}'"):
                    raise
                raise UsageError(f"model '{name}': {exc}") from None
            self.loads[name] = self.loads.get(name, 0) + 1
        return self._loaded[name]
