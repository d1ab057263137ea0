"""`imgdiff models list` and `imgdiff models fetch`: the weights a recipe's model entries point at,
whether they are on this machine, and getting them for users who are online.

`fetch` gathers every model into one folder that can be carried to an offline machine: a hub id is
downloaded with `huggingface_hub.snapshot_download` into `DIR/<name>` (it honours `HF_ENDPOINT`),
or copied from the Hugging Face cache when it is already there; an ultralytics checkpoint named by
a `path:` that does not exist (`FastSAM-x.pt`) is downloaded from ultralytics' release assets, as
ultralytics itself would. `DIR/recipe.yaml` is then the recipe with those entries switched to
`path:`, so it runs with `HF_HUB_OFFLINE=1`. What is already in `DIR` is not downloaded again. With
`HF_HUB_OFFLINE` set nothing is tried: the command names what is missing and stops (exit 2).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from imgdiff.errors import UsageError
from imgdiff.models import ModelEntry, missing_package
from imgdiff.models.loading import (
    FETCH_HINT,
    cached_snapshot,
    first_line,
    hub_cache,
    hub_offline,
    release_asset,
)
from imgdiff.recipe import load_recipe, parse_recipe, read_raw

# ultralytics 8.4's `attempt_download_asset` fetches its named checkpoints (`ULTRALYTICS_ASSETS`)
# from this release.
ULTRALYTICS_RELEASE = "https://github.com/ultralytics/assets/releases/download/v8.4.0"
ASSETS_URL_ENV = "IMGDIFF_ASSETS_URL"  # another base URL for those files (a mirror)
FETCHED = ".imgdiff-fetched.json"  # written into DIR/<name> once a hub snapshot is complete


@dataclass(frozen=True)
class ModelRow:
    """One model entry as `imgdiff models list` shows it."""

    name: str
    role: str
    backend: str
    points_to: str  # the entry's hub id, path or server
    present: bool | None  # None: a server, nothing local to check
    where: str  # where the weights are, or where imgdiff looked


@dataclass(frozen=True)
class Step:
    """What `fetch` does for one entry."""

    name: str
    action: str  # keep | server | done | copy | download | asset | missing
    what: str  # for messages
    target: Path | None = None  # the local copy the rewritten recipe points at


def list_models(spec: str | Path | dict[str, Any]) -> list[ModelRow]:
    """Every model entry of a recipe (file, built-in name or dict) and whether it is here."""
    return [
        ModelRow(name, entry.role, entry.backend, entry.where(), *_presence(entry))
        for name, entry in load_recipe(spec).models.items()
    ]


def _presence(entry: ModelEntry) -> tuple[bool | None, str]:
    if entry.backend == "openai":
        return None, "a server (not checked)"
    if entry.backend == "opencv":
        return True, "built in (no weights)"
    if entry.path is not None:
        path = Path(entry.path).expanduser()
        return path.exists(), str(path.absolute())
    try:
        cached = cached_snapshot(entry)
    except ModuleNotFoundError:
        return False, "cannot look: huggingface_hub is not installed (pip install 'imgdiff[models]')"
    except Exception as exc:  # a malformed id and the like
        return False, first_line(exc)
    if cached is None:
        return False, f"not in the Hugging Face cache {hub_cache()}"
    return True, str(cached)


def rows_table(rows: list[ModelRow]) -> str:
    """The listing as an aligned table with a closing line saying what to do."""
    table = [("name", "role", "backend", "points to", "present", "where")]
    for r in rows:
        present = "-" if r.present is None else "yes" if r.present else "no"
        table.append((r.name, r.role, r.backend, r.points_to, present, r.where))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    lines = ["  ".join([*(v.ljust(w) for v, w in zip(row, widths, strict=False)), row[-1]]) for row in table]
    missing = [r.name for r in rows if r.present is False]
    if not rows:
        lines.append("the recipe has no model entries")
    elif missing:
        lines.append(f"missing: {', '.join(missing)}; {FETCH_HINT}")
    else:
        lines.append("every model is here")
    return "\n".join(lines)


def fetch_models(
    spec: str | Path | dict[str, Any], to: Path, say: Callable[[str], None] | None = None
) -> tuple[Path, list[Step]]:
    """Get every model of the recipe into `to` and write `to/recipe.yaml` pointing at them.

    Returns that file and what was done per entry; `say` receives one progress line per model."""
    raw, where = read_raw(spec)
    recipe = parse_recipe(raw, where)
    if to.exists() and not to.is_dir():
        raise UsageError(f"models fetch --to {to}: not a folder")
    steps = [_plan(name, entry, to) for name, entry in recipe.models.items()]
    _refuse_what_cannot_be_done(steps)
    to.mkdir(parents=True, exist_ok=True)
    for step in steps:
        if say is not None:
            say(f"{step.name}: {step.what}" + (f" -> {step.target}" if step.target else ""))
        _carry_out(step, recipe.models[step.name], progress=say is not None)
    out = to / "recipe.yaml"
    rewritten = _rewritten(raw, {s.name: s.target for s in steps if s.target is not None})
    header = f"# {where}, with its models fetched into this folder by `imgdiff models fetch`\n"
    out.write_text(header + yaml.safe_dump(rewritten, sort_keys=False), encoding="utf-8")
    return out, steps


def _plan(name: str, entry: ModelEntry, to: Path) -> Step:
    if entry.backend == "openai":
        return Step(name, "server", f"a server at {entry.base_url}, nothing to fetch")
    if entry.backend == "opencv":
        return Step(name, "keep", "built in, no weights to fetch")
    if entry.path is not None:
        path = Path(entry.path).expanduser()
        if path.exists():
            return Step(name, "keep", f"present at {path}")
        asset = release_asset(entry)
        if asset is None:
            return Step(name, "missing", f"path {path.absolute()} not found, and it names no known download")
        target = (to / asset).absolute()
        if target.exists():
            return Step(name, "done", "already fetched", target)
        return Step(name, "asset", f"downloading {asset} from {_assets_url()}", target)
    if Path(name).name != name or name in (".", ".."):
        raise UsageError(f"models fetch: model name '{name}' cannot be a folder name; rename the entry")
    target = (to / name).absolute()
    if _already_fetched(target, entry):
        return Step(name, "done", "already fetched", target)
    try:
        cached = cached_snapshot(entry)
    except ModuleNotFoundError as exc:
        raise missing_package(name, exc) from None
    except Exception as exc:
        raise UsageError(f"model '{name}': hub id {entry.id!r}: {first_line(exc)}") from None
    if cached is not None:
        return Step(name, "copy", f"copying hub id {entry.id} from the Hugging Face cache", target)
    return Step(name, "download", f"downloading hub id {entry.id}", target)


def _carry_out(step: Step, entry: ModelEntry, progress: bool) -> None:
    target = step.target
    if step.action == "download" and target is not None:
        _download_snapshot(step.name, entry, target)
    elif step.action == "copy" and target is not None:
        cached = cached_snapshot(entry)
        assert cached is not None  # the plan found it a moment ago
        shutil.copytree(cached, target, dirs_exist_ok=True)  # files, not the cache's links
        _mark_fetched(target, entry)
    elif step.action == "asset" and target is not None:
        _download_asset(step.name, target, progress)


def _refuse_what_cannot_be_done(steps: list[Step]) -> None:
    problems = [f"{s.name} ({s.what})" for s in steps if s.action == "missing"]
    downloads = [s for s in steps if s.action in ("download", "asset")]
    if hub_offline() and downloads:
        needed = ", ".join(f"{s.name} ({s.what.removeprefix('downloading ')})" for s in downloads)
        verb = "needs" if len(downloads) == 1 else "need"
        problems.append(
            f"{needed} {verb} a download and HF_HUB_OFFLINE is set (run this where you are online)"
        )
    if problems:
        raise UsageError(f"models fetch: nothing fetched; missing: {'; '.join(problems)}")


def _already_fetched(target: Path, entry: ModelEntry) -> bool:
    mark = target / FETCHED
    if not mark.is_file():
        return False
    held = json.loads(mark.read_text(encoding="utf-8"))
    if held != _fetch_mark(entry):
        raise UsageError(
            f"models fetch: {target} holds hub id {held.get('id')} (revision {held.get('revision')}), "
            f"not {entry.id} (revision {entry.revision}); remove it or fetch into another folder"
        )
    return True


def _fetch_mark(entry: ModelEntry) -> dict[str, Any]:
    return {"id": entry.id, "revision": entry.revision}


def _mark_fetched(target: Path, entry: ModelEntry) -> None:
    # Written last: its presence means the snapshot is complete.
    (target / FETCHED).write_text(json.dumps(_fetch_mark(entry)), encoding="utf-8")


def _download_snapshot(name: str, entry: ModelEntry, target: Path) -> None:
    try:
        from huggingface_hub import constants, snapshot_download
    except ModuleNotFoundError as exc:
        raise missing_package(name, exc) from None
    try:
        snapshot_download(entry.id, revision=entry.revision, local_dir=target)
    except Exception as exc:
        raise UsageError(
            f"model '{name}': could not download hub id {entry.id} from {constants.ENDPOINT}: "
            f"{_hub_failure(exc, entry)}"
        ) from None
    _mark_fetched(target, entry)


def _hub_failure(exc: Exception, entry: ModelEntry) -> str:
    """Why a hub download failed and what to do, in a few words (the hub's own messages span lines)."""
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    if isinstance(exc, GatedRepoError):
        return "the repository is gated: accept its terms on the hub, then log in (`hf auth login`)"
    if isinstance(exc, RepositoryNotFoundError):
        return "no such repository, or it is private (log in with `hf auth login`)"
    if isinstance(exc, RevisionNotFoundError):
        return f"it has no revision {entry.revision}"
    return f"{first_line(exc)}; run the same command again to retry"


def _assets_url() -> str:
    return os.environ.get(ASSETS_URL_ENV, ULTRALYTICS_RELEASE).rstrip("/")


def _download_asset(name: str, target: Path, progress: bool) -> None:
    """Stream a release asset into a temporary file beside `target`, then rename it: a file at
    `target` is always complete."""
    import httpx
    from tqdm import tqdm

    url = f"{_assets_url()}/{target.name}"
    part = target.with_name(target.name + ".part")
    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=60.0) as response:
            response.raise_for_status()
            size = int(response.headers.get("Content-Length", 0)) or None
            with (
                part.open("wb") as out,
                tqdm(total=size, unit="B", unit_scale=True, desc=target.name, disable=not progress) as bar,
            ):
                for chunk in response.iter_bytes(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
    except httpx.HTTPError as exc:
        part.unlink(missing_ok=True)
        raise UsageError(
            f"model '{name}': could not download {url} ({first_line(exc)}); run the same command again "
            f"to retry, or set {ASSETS_URL_ENV} to a mirror"
        ) from None
    os.replace(part, target)


def _rewritten(raw: dict[str, Any], targets: dict[str, Path]) -> dict[str, Any]:
    """The raw recipe with each fetched entry's `id`/`path` replaced by the local copy's path."""
    out = copy.deepcopy(raw)
    for name, target in targets.items():
        fields: dict[str, Any] = {}
        for key, value in out["models"][name].items():
            if key in ("id", "path"):
                fields["path"] = str(target)
            elif key != "revision":
                fields[key] = value
        out["models"][name] = fields
    return out
