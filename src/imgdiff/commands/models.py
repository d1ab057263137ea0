"""`imgdiff models make-tiny | list | fetch`: what `cli.py` runs for the `models` command (its
arguments are parsed there). The work is done by `imgdiff.tiny` (the tiny checkpoints) and
`commands/fetch.py` (a recipe's models: present or not, fetching them); this module prints."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from imgdiff.errors import UsageError, did_you_mean


def models_command(args: argparse.Namespace) -> int:
    if args.action == "make-tiny":
        return make_tiny_command(Path(args.dir), args.only)
    from imgdiff.commands.fetch import fetch_models, list_models, rows_table

    if args.action == "list":
        rows = list_models(args.recipe)
        print(json.dumps([asdict(r) for r in rows]) if args.json else rows_table(rows))
        return 0
    recipe, _ = fetch_models(args.recipe, Path(args.to), say=print)
    print(f"wrote {recipe}: it runs offline, e.g. imgdiff run {recipe} --out RUN")
    return 0


def make_tiny_command(out: Path, only: str | None) -> int:
    from imgdiff.models import missing_package
    from imgdiff.tiny import TINY, make_tiny

    names = list(dict.fromkeys(n.strip() for n in only.split(",") if n.strip())) if only else list(TINY)
    for name in names:
        if name not in TINY:
            raise UsageError(f"make-tiny --only: unknown model '{name}'{did_you_mean(name, TINY)}")
    if not names:
        raise UsageError(f"make-tiny --only: no model named (valid: {', '.join(TINY)})")
    if out.exists() and not out.is_dir():
        raise UsageError(f"make-tiny: '{out}' is a file, not a folder")
    print(f"building {len(names)} tiny model(s) in {out}", flush=True)
    built: list[str] = []

    def report(name: str, entry: dict[str, Any]) -> None:
        built.append(name)
        print(f"  {name}: {entry['path']}", flush=True)

    try:
        make_tiny(out, names, on_built=report)
    except ModuleNotFoundError as exc:
        if (exc.name or "").startswith("imgdiff"):
            raise
        raise missing_package(names[len(built)], exc) from None
    except (FileExistsError, NotADirectoryError, PermissionError) as exc:
        raise UsageError(f"make-tiny: cannot write into '{out}': {exc.strerror or exc}") from None
    line = (
        f"wrote {out / 'recipe.yaml'} and {out / 'models.yaml'}; to see the models load and run (random "
        f"weights: the outputs are noise): imgdiff run {out / 'recipe.yaml'} --out RUN --limit 8"
    )
    print(line)
    return 0
