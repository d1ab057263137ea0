"""The `imgdiff` command. Exit codes: 0 ok, 2 bad usage or input (one line), 1 internal error,
130 stopped by a signal after finishing the batch in hand (rerun the same command to resume)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from imgdiff import __version__
from imgdiff.errors import UsageError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imgdiff", description="Contrastive image-difference data (Img-Diff)."
    )
    parser.add_argument("--version", action="version", version=f"imgdiff {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run or resume a recipe into a run directory")
    run.add_argument("recipe", help="a recipe file or a built-in recipe name (imgdiff recipes list)")
    run.add_argument("--out", required=True, help="the run directory")
    run.add_argument("--limit", type=int, help="take the first N source items")
    run.add_argument("--seed", type=int, help="the run seed (default: the recipe's)")
    run.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe setting, e.g. pair_filter.similarity_min=0.9",
    )
    run.add_argument("--shard", help="run the I-th of N slices into DIR/shards/I-of-N")
    run.add_argument("--engine", choices=["local"], default="local")
    run.add_argument("--fresh", action="store_true", help="start over: discard the directory's run")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")

    re = sub.add_parser("rethreshold", help="re-apply decisions from stored scores with new thresholds")
    re.add_argument("dir")
    re.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", required=True)

    recipes = sub.add_parser("recipes", help="the built-in recipes")
    recipes.add_argument("action", choices=["list", "show"])
    recipes.add_argument("name", nargs="?")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.WARNING)
    console.setFormatter(logging.Formatter("imgdiff: %(message)s"))
    logging.getLogger("imgdiff").addHandler(console)
    try:
        return _dispatch(args)
    except UsageError as exc:
        print(f"imgdiff: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "imgdiff: stopped at once; finished work is on disk: run the same command to resume",
            file=sys.stderr,
        )
        return 130
    finally:
        logging.getLogger("imgdiff").removeHandler(console)


def _dispatch(args: argparse.Namespace) -> int:
    from imgdiff import runner
    from imgdiff.engine.local import Interrupted

    if args.command == "recipes":
        return _recipes(args)
    try:
        if args.command == "run":
            result = runner.run(
                args.recipe,
                args.out,
                limit=args.limit,
                seed=args.seed,
                overrides=args.sets,
                shard=args.shard,
                fresh=args.fresh,
                progress=not args.no_progress,
            )
        else:
            before = _previous_stats(args.dir)
            result = runner.rethreshold(args.dir, args.sets)
    except Interrupted as stop:
        print(_table(stop.args[0].stats), file=sys.stdout)
        print(
            "imgdiff: stopped after the batch in hand; run the same command again to resume", file=sys.stderr
        )
        return 130
    print(_table(result.stats))
    if args.command == "rethreshold":
        print(_rethreshold_summary(before, result.stats))
    return 0


def _recipes(args: argparse.Namespace) -> int:
    from imgdiff.recipe import builtin_recipes

    found = builtin_recipes()
    if args.action == "list":
        for name, text in sorted(found.items()):
            first = text.splitlines()[0].lstrip("# ") if text else ""
            print(f"{name:<20} {first}")
        return 0
    if args.name not in found:
        from imgdiff.errors import did_you_mean

        raise UsageError(f"no built-in recipe '{args.name}'{did_you_mean(str(args.name), found)}")
    print(found[args.name], end="")
    return 0


def _table(stats: dict[str, Any]) -> str:
    rows = [("stage", "in", "kept", "rejected", "reused", "computed", "pending", "seconds", "rec/s")]
    for s in stats["stages"]:
        rate = f"{s['computed'] / s['seconds']:.1f}" if s["seconds"] > 0 else "-"
        rows.append(
            (
                s["stage"],
                s["in"],
                s["kept"],
                sum(s["rejected"].values()),
                s["reused"],
                s["computed"],
                s["pending"],
                f"{s['seconds']:.2f}",
                rate,
            )
        )
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            str(v).rjust(w) if i else str(v).ljust(w) for i, (v, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    lines.append(
        f"records: {stats['records']} ({stats['kept']} kept, {stats['rejected']} rejected, "
        f"{stats['pending']} pending) in {stats['seconds']:.2f} s"
    )
    return "\n".join(lines)


def _previous_stats(out: str) -> dict[str, Any] | None:
    import json
    from pathlib import Path

    path = Path(out) / "stats.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _rethreshold_summary(before: dict[str, Any] | None, after: dict[str, Any]) -> str:
    lines = []
    if before is not None:
        lines.append(f"kept: {before['kept']} -> {after['kept']}")
    for stage, n in after.get("pending_by_stage", {}).items():
        lines.append(
            f"pending: {n} records now need stage '{stage}'; run the same `imgdiff run` command to do it"
        )
    if not after.get("pending_by_stage"):
        lines.append("pending: none")
    return "\n".join(lines)
