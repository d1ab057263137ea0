"""Finding a model's weights, and the device and dtype it runs with: shared by every loader.

`locate` turns an entry into a local path. A `path` must exist. A hub `id` is looked up in the
Hugging Face cache first; it is downloaded only when the hub is reachable and `HF_HUB_OFFLINE` is not
set (DESIGN.md: no network at run time unless the user asked for a hub id and is online). Anything
missing fails with one line: the model's name, where it looked, and how to get it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imgdiff.errors import UsageError

if TYPE_CHECKING:
    from imgdiff.models import ModelEntry

FETCH_HINT = "fetch it where you are online with `imgdiff models fetch RECIPE --to DIR` and set its path"


class ModelNotFound(UsageError):
    """A model entry whose weights are not where it points (exit 2, one line)."""


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def hub_cache() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def locate(name: str, entry: ModelEntry, allow_download: bool = True) -> Path:
    """The local file or folder holding the entry's weights (downloading a hub id when allowed)."""
    if entry.path is not None:
        path = Path(entry.path).expanduser()
        if not path.exists():
            raise ModelNotFound(f"model '{name}': path {path} not found; {FETCH_HINT}")
        return path
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    assert entry.id is not None
    try:
        return Path(snapshot_download(entry.id, revision=entry.revision, local_files_only=True))
    except LocalEntryNotFoundError:
        pass
    except Exception as exc:  # a malformed id and the like
        raise ModelNotFound(f"model '{name}': hub id {entry.id!r}: {exc}") from None
    if hub_offline() or not allow_download:
        why = "HF_HUB_OFFLINE is set" if hub_offline() else "downloads are off"
        raise ModelNotFound(
            f"model '{name}': {entry.id} is not in the Hugging Face cache {hub_cache()} and {why}; "
            f"{FETCH_HINT}"
        )
    try:
        return Path(snapshot_download(entry.id, revision=entry.revision))
    except Exception as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelNotFound(
            f"model '{name}': could not download {entry.id} ({detail}); {FETCH_HINT}"
        ) from None


def device_of(entry: ModelEntry) -> str:
    """The torch device: "auto" is the first GPU when there is one, else the CPU."""
    import torch

    if entry.device != "auto":
        if entry.device.startswith("cuda") and not torch.cuda.is_available():
            raise UsageError(f"device {entry.device}: no CUDA GPU is visible to torch")
        return entry.device
    return "cuda" if torch.cuda.is_available() else "cpu"


def dtype_of(entry: ModelEntry, device: str) -> Any:
    """The torch dtype; half precision on the CPU becomes float32 (CPU kernels for it are slow or
    missing, and CPU runs are tests and smoke runs)."""
    import torch

    if device == "cpu":
        return torch.float32
    return getattr(torch, entry.dtype)
