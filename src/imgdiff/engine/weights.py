"""How many parameters a model entry's weights hold, found without loading or downloading anything.

In order of trust:
1. `meta`: the entry's weights are local (its `path`, or its hub id's complete snapshot in the
   Hugging Face cache) with a config: the architecture is built on the meta device (no memory, no
   weights) and its parameters counted. A diffusers pipeline folder counts each torch component
   its `model_index.json` names (UNet or transformer, text encoders, VAE).
2. `files`: local weights without a config we can build (an ultralytics `.pt`, a folder of weight
   files): their size on disk / 2, as if stored in half precision (what ultralytics saves); a
   float32 file counts double, which errs towards loading models per group.
3. `table`: not local: `FAMILIES`, the parameters of the model families the built-in recipes and
   editors name (the first pattern found in the lowercased id or path wins), else a size written in
   the name as LLM names carry it (`-7b`, `1.5B`, `500m`).
Otherwise the size is unknown (None). Bytes are parameters x the entry's dtype bytes: weights only.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from imgdiff.models import ModelEntry

log = logging.getLogger("imgdiff")

GB = 1024**3
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}
# Backends whose entries put no weights in this process: a server's model, OpenCV's inpainting.
NO_WEIGHTS = frozenset({"openai", "opencv"})
WEIGHT_FILES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")

# (pattern in the lowercased id or path, parameters): the families the built-in recipes and the
# editors name. Counted from the architectures on the meta device (benchmarks/group_memory.py) for
# Qwen2-7B, SDXL base (UNet 2,567 M, text encoders 123 M + 695 M, VAE 84 M), CLIP ViT-B/32,
# BLIP ITM large, FastSAM-x and LLaVA-NeXT-7B; the others from their published model cards: SD 1.x
# and InstructPix2Pix (UNet 860 M, text encoder 123 M, VAE 84 M), FLUX.1 (transformer 11.9 B, T5-XXL
# encoder 4.76 B, CLIP-L 123 M, VAE 84 M), Qwen-Image (transformer 20.4 B, Qwen2.5-VL-7B encoder
# 8.29 B, VAE 127 M). More specific patterns come first.
FAMILIES: tuple[tuple[str, int], ...] = (
    ("qwen2-7b", 7_616_000_000),
    ("llava-v1.6-vicuna-7b", 7_063_000_000),
    ("stable-diffusion-xl", 3_469_000_000),
    ("sdxl", 3_469_000_000),
    ("instruct-pix2pix", 1_067_000_000),
    ("stable-diffusion", 1_067_000_000),
    ("flux.1", 16_867_000_000),
    ("qwen-image", 28_817_000_000),
    ("clip-vit-base-patch32", 151_000_000),
    ("clip-vit-large-patch14", 428_000_000),
    ("blip-itm-large", 446_000_000),
    ("blip-itm-base", 224_000_000),
    ("fastsam-x", 72_000_000),
    ("fastsam-s", 12_000_000),
)
SIZE_IN_NAME = re.compile(r"(?<![a-z0-9.])(\d+(?:\.\d+)?)([bm])(?![a-z0-9])")


@dataclass(frozen=True)
class Estimate:
    parameters: int
    how: str  # "meta", "files" or "table"

    def gb(self, dtype: str) -> float:
        return self.parameters * DTYPE_BYTES[dtype] / GB


def count(modules: list[torch.nn.Module]) -> int:
    """Parameters of these modules (a parameter shared by two counts once per module)."""
    return sum(p.numel() for module in modules for p in module.parameters())


def estimate(entry: ModelEntry) -> Estimate | None:
    """The entry's parameters (None: no weights in this process, or no way to tell)."""
    if entry.backend in NO_WEIGHTS:
        return None
    local = _local(entry)
    if local is not None:
        try:
            return Estimate(_on_meta(local), "meta")
        except Exception as exc:  # noqa: BLE001 - any config we cannot build: fall back to the files
            log.debug("weights of %s: no meta build (%s); sizing the files", local, exc)
        size = _file_bytes(local)
        if size:
            return Estimate(size // 2, "files")
    name = (entry.id or entry.path or "").lower()
    return _from_table(name)


def _local(entry: ModelEntry) -> Path | None:
    """The entry's local weights, never downloading: its path, or its hub id's cached snapshot."""
    if entry.path is not None:
        path = Path(entry.path).expanduser()
        return path if path.exists() else None
    from imgdiff.models.loading import cached_snapshot

    try:
        return cached_snapshot(entry)
    except Exception:  # noqa: BLE001 - a malformed id or a damaged cache: not local
        return None


def _on_meta(folder: Path) -> int:
    """Parameters of the architecture(s) the folder's config describes, built on the meta device."""
    if (folder / "model_index.json").is_file():
        return _pipeline(folder)
    if not (folder / "config.json").is_file():
        raise ValueError("no config.json")
    import torch

    with torch.device("meta"):
        return count([_transformers_model(folder)])


def _transformers_model(folder: Path) -> torch.nn.Module:
    import transformers

    config = transformers.AutoConfig.from_pretrained(folder)
    names = getattr(config, "architectures", None) or []
    cls = getattr(transformers, names[0], None) if names else None
    if cls is None:
        raise ValueError(f"config names no transformers architecture: {names}")
    return cls(config)


def _pipeline(folder: Path) -> int:
    """A diffusers pipeline folder: every component that is a torch module, on the meta device."""
    import torch

    index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    modules = []
    with torch.device("meta"):
        for component, spec in index.items():
            sub = folder / component
            if not (isinstance(spec, list) and len(spec) == 2 and (sub / "config.json").is_file()):
                continue  # private keys, schedulers, tokenizers, processors
            library, class_name = spec
            if library == "transformers":
                modules.append(_transformers_model(sub))
            elif library == "diffusers":
                import diffusers

                cls = getattr(diffusers, class_name)
                if isinstance(cls, type) and issubclass(cls, torch.nn.Module):
                    modules.append(cls.from_config(cls.load_config(sub)))
    if not modules:
        raise ValueError("model_index.json names no model component")
    return count(modules)


def _file_bytes(path: Path) -> int:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files if p.suffix in WEIGHT_FILES)


def _from_table(name: str) -> Estimate | None:
    for pattern, parameters in FAMILIES:
        if pattern in name:
            return Estimate(parameters, "table")
    found = SIZE_IN_NAME.search(name)
    if found:
        scale = 10**9 if found.group(2) == "b" else 10**6
        return Estimate(int(float(found.group(1)) * scale), "table")
    return None
