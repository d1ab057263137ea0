"""Opening a run: the prelude every verb shares, in one place.

`open_dir` opens an existing run directory (its `run.json`); `open_run` opens a run to work on: the
recipe with `--set` overrides, the source built and checked, the plan (fingerprints), the shard, and
whether the directory's run may be resumed by it. A refusal is a typed `NotResumable` that carries
what changed; a verb that only reports (status, --dry-run) keeps it, a verb that works raises it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imgdiff.engine.plan import Plan
from imgdiff.engine.shard import Shard
from imgdiff.errors import UsageError
from imgdiff.recipe import Recipe, load_recipe
from imgdiff.sources.base import Source
from imgdiff.store import RunStore


class NotResumable(UsageError):
    """The directory holds a run this command may not resume: `changes` says what differs."""

    def __init__(self, root: Path, changes: Sequence[str]) -> None:
        self.root, self.changes = root, tuple(changes)
        super().__init__(f"cannot resume {root}: {self.why}")

    @property
    def why(self) -> str:
        return f"{' and '.join(self.changes)}; pass --fresh to start over"


@dataclass
class OpenRun:
    store: RunStore
    meta: dict[str, Any] | None  # run.json as found; None for a new run (or one started over)
    recipe: Recipe
    source: Source
    plan: Plan
    shard: Shard | None
    limit: int | None
    refusal: NotResumable | None  # why this run may not resume the directory's run, if it may not

    def check_resumable(self) -> None:
        if self.refusal is not None:
            raise self.refusal


def open_dir(out: str | Path) -> tuple[RunStore, dict[str, Any]]:
    """An existing run directory and its run.json; a one-line UsageError if it is not one."""
    store = RunStore.existing(out)
    meta = store.read_meta()
    assert meta is not None  # `existing` checked that run.json is there
    return store, meta


def open_run(
    store: RunStore,
    recipe: str | Path | dict[str, Any],
    sets: Sequence[str] = (),
    *,
    meta: dict[str, Any] | None,
    shard: Shard | None,
    limit: int | None,
) -> OpenRun:
    """Load the recipe with `sets`, build and check its source, plan it, and see whether it may
    resume the run `meta` describes."""
    loaded = load_recipe(recipe, list(sets))
    store.image_format = loaded.run.image_format
    source = loaded.build_source()
    source.check()
    plan = Plan.make(loaded, source.fingerprint())
    refusal = None if meta is None else _refusal(meta, plan, shard, store.root)
    return OpenRun(store, meta, loaded, source, plan, shard, limit, refusal)


def reopen(out: str | Path, sets: Sequence[str] = ()) -> OpenRun:
    """The run of an existing directory, as it was started (its recipe, shard and limit) + `sets`."""
    store, meta = open_dir(out)
    shard = Shard(**meta["shard"]) if meta.get("shard") else None
    return open_run(store, meta["recipe"], sets, meta=meta, shard=shard, limit=meta.get("limit"))


def _refusal(meta: dict[str, Any], plan: Plan, shard: Shard | None, root: Path) -> NotResumable | None:
    old_shard = Shard(**meta["shard"]) if meta.get("shard") else None
    changes = []
    if meta.get("source_fingerprint") != plan.source_fingerprint:
        changes.append("the source changed")
    if meta.get("seed") != plan.recipe.seed:
        changes.append(f"the seed changed ({meta.get('seed')} -> {plan.recipe.seed})")
    if old_shard != shard:
        changes.append(f"the shard spec changed ({old_shard} -> {shard})")
    return NotResumable(root, changes) if changes else None
