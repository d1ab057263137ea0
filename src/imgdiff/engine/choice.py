"""Which local mode runs: streaming (every model loaded at once) or models per group.

`--chunk-size N` forces models per group. Otherwise the recipe's model weights that go to a GPU
(entries not on the CPU, with weights in this process) are estimated (`engine.weights`) and compared
with the GPU budget: the `gpu_memory_gb` runtime setting, else the memory of the CUDA device the
entries use, else there is none (the models load into RAM: streaming). Models per group runs when
all the weights at once take more than `WEIGHTS_SHARE` of the budget: the rest is for activations,
the CUDA context and the allocator's cache. An entry of unknown size counts as nothing and is
named in the reason. The choice says why, for the run log and `stats.json`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from imgdiff.engine.plan import Plan
from imgdiff.engine.weights import NO_WEIGHTS, estimate

log = logging.getLogger("imgdiff")

WEIGHTS_SHARE = 0.8
DEFAULT_CHUNK_SIZE = 256  # records per chunk when the mode is chosen, not forced


@dataclass(frozen=True)
class Choice:
    grouped: bool
    why: str
    chunk_size: int | None = None  # models per group: records per chunk
    budget_gb: float | None = None
    weights_gb: float | None = None  # every GPU entry at once
    groups_gb: dict[str, float] = field(default_factory=dict)  # group ("a+b") -> its entries' GB
    unknown: tuple[str, ...] = ()  # entries whose size no estimate found

    @property
    def mode(self) -> str:
        return "models-per-group" if self.grouped else "streaming"

    def stats(self) -> dict[str, Any]:
        """The choice as `stats.json` keeps it (`engine`), without the peaks the run adds."""
        stats: dict[str, Any] = {"mode": self.mode, "why": self.why}
        if self.chunk_size is not None:
            stats["chunk_size"] = self.chunk_size
        for key in ("budget_gb", "weights_gb"):
            if getattr(self, key) is not None:
                stats[key] = _digits(getattr(self, key))
        if self.groups_gb:
            stats["groups_gb"] = {group: _digits(gb) for group, gb in self.groups_gb.items()}
        if self.unknown:
            stats["unknown_size"] = list(self.unknown)
        return stats


def choose(plan: Plan, chunk_size: int | None = None, gpu_memory_gb: float | None = None) -> Choice:
    if chunk_size is not None:
        return Choice(True, f"forced by --chunk-size {chunk_size}", chunk_size)
    entries = plan.recipe.models
    groups = {bounds.name: _on_gpu(plan, bounds.models) for bounds in plan.spans()[1:]}
    on_gpu = sorted(set().union(*groups.values()))
    if not on_gpu:
        return Choice(False, "no model weights go to a GPU")
    budget, source = _budget(gpu_memory_gb, [entries[n].device for n in on_gpu])
    if budget is None:
        return Choice(False, "no GPU budget (no CUDA device, no gpu_memory_gb): models load into RAM")
    found = {name: estimate(entries[name]) for name in on_gpu}
    sizes = {n: e.gb(entries[n].dtype) for n, e in found.items() if e is not None}
    unknown = tuple(n for n, e in found.items() if e is None)
    weights = sum(sizes.values())
    groups_gb = {g: sum(sizes.get(n, 0.0) for n in names) for g, names in groups.items()}
    how = ", ".join(f"{n} {_gb(sizes[n])} ({found[n].how})" for n in sizes)  # type: ignore[union-attr]
    limit = WEIGHTS_SHARE * budget
    grouped = weights > limit
    verb = "more" if grouped else "not more"
    why = f"weights {_gb(weights)} ({how}) {verb} than {WEIGHTS_SHARE:.0%} of {_gb(budget)} ({source})"
    if unknown:
        why += f"; size unknown, counted as 0: {', '.join(unknown)}"
    largest = max(groups_gb, key=groups_gb.__getitem__)
    if grouped and groups_gb[largest] > limit:
        log.warning(
            "models per group: group %s alone needs %s, more than %s: it may run out of GPU memory "
            "(a half-precision dtype for its models, or a larger GPU)",
            largest,
            _gb(groups_gb[largest]),
            _gb(limit),
        )
    chunk = DEFAULT_CHUNK_SIZE if grouped else None
    return Choice(grouped, why, chunk, budget, weights, groups_gb, unknown)


def _digits(size: float) -> float:
    """Four significant digits: GB of full-size and of tiny models alike."""
    return float(f"{size:.4g}")


def _gb(size: float) -> str:
    """A size for the log: two decimals, or two significant digits below 0.01 GB (tiny models)."""
    return f"{size:.2f} GB" if size >= 0.01 or size == 0 else f"{size:.2g} GB"


def _on_gpu(plan: Plan, names: frozenset[str]) -> set[str]:
    """The entries that would hold weights on a GPU."""
    entries = plan.recipe.models
    return {n for n in names if entries[n].backend not in NO_WEIGHTS and entries[n].device != "cpu"}


def _budget(gpu_memory_gb: float | None, devices: list[str]) -> tuple[float | None, str]:
    """(GB, where that figure came from): the setting, else the smallest CUDA device the entries
    use ("auto" and "cuda" mean device 0), else None."""
    if gpu_memory_gb is not None:
        return gpu_memory_gb, "gpu_memory_gb"
    try:
        import torch
    except ImportError:  # no torch, no CUDA device: the models extra is missing, loading will say so
        return None, ""
    if not torch.cuda.is_available():
        return None, ""
    numbers = {int(d.partition(":")[2] or 0) for d in devices}
    visible = [n for n in numbers if n < torch.cuda.device_count()]
    if not visible:
        return None, ""
    memory = min(torch.cuda.get_device_properties(n).total_memory for n in visible)
    return round(memory / 1024**3, 2), "the CUDA device's memory"
