"""Finding a model's weights, and the device and dtype it runs with: shared by every loader.

`locate` turns an entry into a local path. A `path` must exist. A hub `id` is looked up in the
Hugging Face cache first; it is downloaded only when the hub is reachable and `HF_HUB_OFFLINE` is not
set (DESIGN.md: no network at run time unless the user asked for a hub id and is online). Anything
missing fails with one line: the model's name, where it looked, and how to get it.
`release_asset` names an entry's ultralytics checkpoint that `imgdiff models fetch` can download.
`load_transformers` is the one way the transformers roles (CLIP, BLIP, the text and vision-text
generators) load what `locate` found.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imgdiff.errors import UsageError
from imgdiff.models.compat import transformers_dtype_keyword

if TYPE_CHECKING:
    from imgdiff.models import ModelEntry

FETCH_HINT = "where you are online, run `imgdiff models fetch RECIPE --to DIR`, then run DIR/recipe.yaml"
# The segmenter checkpoints we load that ultralytics publishes as release assets (by file name).
ULTRALYTICS_ASSETS = frozenset({"FastSAM-s.pt", "FastSAM-x.pt"})


class ModelNotFound(UsageError):
    """A model entry whose weights are not where it points (exit 2, one line)."""


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def hub_cache() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def first_line(value: object, limit: int = 200) -> str:
    """An exception or message as one line of at most `limit` characters (hub, transformers and
    server errors often span several)."""
    text = str(value).strip()
    line = text.splitlines()[0] if text else type(value).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


def cached_snapshot(entry: ModelEntry) -> Path | None:
    """The complete local snapshot of the entry's hub id in the Hugging Face cache, or None."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    assert entry.id is not None
    try:
        return Path(snapshot_download(entry.id, revision=entry.revision, local_files_only=True))
    except LocalEntryNotFoundError:  # absent, or partly there (IncompleteSnapshotError)
        return None


def locate(name: str, entry: ModelEntry) -> Path:
    """The local file or folder holding the entry's weights (downloading a hub id when allowed)."""
    if entry.path is not None:
        path = Path(entry.path).expanduser()
        if not path.exists():
            raise ModelNotFound(f"model '{name}': path {path.absolute()} not found; {_path_hint(entry)}")
        return path
    assert entry.id is not None
    try:
        cached = cached_snapshot(entry)
    except ModuleNotFoundError:
        raise  # the missing extra: ModelPool turns it into the install hint
    except Exception as exc:  # a malformed id, an incomplete snapshot and the like
        raise ModelNotFound(f"model '{name}': hub id {entry.id!r}: {first_line(exc)}") from None
    if cached is not None:
        return cached
    if hub_offline():
        raise ModelNotFound(
            f"model '{name}': hub id {entry.id} is not in the Hugging Face cache {hub_cache()} and "
            f"HF_HUB_OFFLINE is set; {FETCH_HINT}"
        )
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(entry.id, revision=entry.revision))
    except Exception as exc:
        raise ModelNotFound(
            f"model '{name}': could not download hub id {entry.id} ({first_line(exc)}); {FETCH_HINT}"
        ) from None


def release_asset(entry: ModelEntry) -> str | None:
    """The ultralytics release file an entry's `path` names (e.g. FastSAM-x.pt), or None: a file
    that `imgdiff models fetch` can download when the path does not exist."""
    if entry.backend == "ultralytics" and entry.path is not None:
        name = Path(entry.path).name
        return name if name in ULTRALYTICS_ASSETS else None
    return None


def _path_hint(entry: ModelEntry) -> str:
    if release_asset(entry) is not None:
        return FETCH_HINT
    return "fix the path, or name the model by its hub id (`id:`) to have it downloaded"


def device_of(entry: ModelEntry) -> str:
    """The torch device: "auto" is the first GPU when there is one, else the CPU. (The entry has
    checked the form: auto, cpu, cuda or cuda:N.)"""
    import torch

    if entry.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if entry.device.startswith("cuda"):
        number = int(entry.device.partition(":")[2] or 0)
        visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if number >= visible:
            seen = f"only {visible} CUDA GPU(s) are" if visible else "no CUDA GPU is"
            raise UsageError(f"device {entry.device}: {seen} visible to torch; use device auto or cpu")
    return entry.device


def dtype_of(entry: ModelEntry, device: str) -> Any:
    """The torch dtype; half precision on the CPU becomes float32 (CPU kernels for it are slow or
    missing, and CPU runs are tests and smoke runs)."""
    import torch

    if device == "cpu":
        return torch.float32
    return getattr(torch, entry.dtype)


def load_transformers(
    name: str, entry: ModelEntry, model_class: Any, preprocessor_class: Any
) -> tuple[Any, Any, str, Any]:
    """(model, preprocessor, device, dtype) for a transformers entry: the model loaded in the
    entry's dtype, on its device, in eval mode, and its processor or tokenizer. A folder that does
    not hold them fails with one line, not transformers' multi-line error."""
    path = locate(name, entry)
    if not (path / "config.json").is_file():
        raise UsageError(f"model '{name}': {path} is not a transformers model folder (no config.json)")
    device = device_of(entry)
    dtype = dtype_of(entry, device)
    try:
        preprocessor = preprocessor_class.from_pretrained(path, local_files_only=True)
        # Loaded in the dtype, not cast afterwards: a cast also rounds buffers such as RoPE's
        # frequencies, which transformers keeps in float32.
        model = model_class.from_pretrained(path, local_files_only=True, **transformers_dtype_keyword(dtype))
    except (OSError, ValueError) as exc:  # missing or unreadable files, an unknown architecture
        raise UsageError(f"model '{name}': cannot load {path}: {first_line(exc)}") from None
    return model.to(device).eval(), preprocessor, device, dtype
