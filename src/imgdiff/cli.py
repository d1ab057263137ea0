"""The `imgdiff` command. Exit codes: 0 ok, 2 bad usage or input (one line), 1 internal error,
130 stopped by a signal after finishing the batch in hand (rerun the same command to resume)."""

from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import sys
from collections.abc import Sequence
from typing import Any

from imgdiff.errors import UsageError, os_error_line
from imgdiff.report import cli as report_cli
from imgdiff.version import __version__

DEMO_PAIRS = 200


def _run_options(parser: argparse.ArgumentParser, out_required: bool = True) -> None:
    parser.add_argument("--out", required=out_required, help="the run directory")
    parser.add_argument("--limit", type=int, help="take the first N source items")
    parser.add_argument("--seed", type=int, help="the run seed (default: the recipe's)")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe setting, e.g. pair_filter.similarity_min=0.9",
    )
    parser.add_argument("--shard", help="run the I-th of N slices into DIR/shards/I-of-N")
    parser.add_argument("--engine", choices=["local", "ray"], default="local")
    parser.add_argument("--address", help="--engine ray: the cluster to join (default: a local one)")
    parser.add_argument("--workers", type=int, default=1, help="--engine ray: workers per group")
    parser.add_argument("--gpus-per-worker", type=float, help="--engine ray: GPUs (fractional allowed)")
    parser.add_argument(
        "--chunk-size", type=int, help="local engine, models per group: load one group's models at a time"
    )
    parser.add_argument(
        "--gpu-memory-gb",
        type=float,
        help="local engine: the GPU memory to fit (default: the CUDA device's); models per group when "
        "the recipe's weights do not fit",
    )
    parser.add_argument("--fresh", action="store_true", help="start over: discard the directory's run")
    parser.add_argument("--dry-run", action="store_true", help="say what the run would do; write nothing")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imgdiff", description="Contrastive image-difference data (Img-Diff)."
    )
    parser.add_argument("--version", action="version", version=f"imgdiff {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run or resume a recipe into a run directory")
    run.add_argument("recipe", help="a recipe file or a built-in recipe name (imgdiff recipes list)")
    _run_options(run)

    demo = sub.add_parser("demo", help=f"run the quickstart recipe ({DEMO_PAIRS} pairs unless --limit)")
    _run_options(demo, out_required=False)

    status = sub.add_parser("status", help="what a run directory holds and what a rerun will do")
    status.add_argument("dir")
    status.add_argument("--json", action="store_true")

    re = sub.add_parser("rethreshold", help="re-apply decisions from stored scores with new thresholds")
    re.add_argument("dir")
    re.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", required=True)

    merge = sub.add_parser("merge", help="join DIR/shards/I-of-N into DIR")
    merge.add_argument("dir")

    from imgdiff.export.cli_args import add_arguments as export_arguments

    export_arguments(sub.add_parser("export", help="write a finished run in a training-data format"))

    from imgdiff.eval.cli import register as register_eval

    register_eval(sub)  # `eval` and `predict`

    report_cli.register(sub)  # `report` and `audit`

    recipes = sub.add_parser("recipes", help="the built-in recipes")
    recipes.add_argument("action", choices=["list", "show"])
    recipes.add_argument("name", nargs="?")

    models = sub.add_parser("models", help="model checkpoints: tiny test ones, what a recipe needs, fetch")
    actions = models.add_subparsers(dest="action", required=True, metavar="ACTION")
    tiny = actions.add_parser("make-tiny", help="tiny random-weight checkpoints and a recipe using them")
    tiny.add_argument("dir")
    tiny.add_argument("--only", help="comma-separated model names, e.g. clip,blip (default: all)")
    listing = actions.add_parser("list", help="the models a recipe names and whether they are here")
    listing.add_argument("recipe", help="a recipe file or a built-in recipe name")
    listing.add_argument("--json", action="store_true")
    fetch = actions.add_parser("fetch", help="download a recipe's models into DIR (online)")
    fetch.add_argument("recipe", help="a recipe file or a built-in recipe name")
    fetch.add_argument("--to", required=True, metavar="DIR", help="folder for the models and DIR/recipe.yaml")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if hasattr(signal, "SIGXFSZ"):  # a file-size limit: a write fails with EFBIG (one line, below)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    logging.raiseExceptions = False  # a log write refused (full disk) must not print a traceback
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.WARNING)
    console.setFormatter(logging.Formatter("imgdiff: %(message)s"))
    logging.getLogger("imgdiff").addHandler(console)
    try:
        return _dispatch(args)
    except UsageError as exc:
        print(f"imgdiff: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the machine refused a read or write: full disk, read-only, missing file
        if getattr(exc, "finished_stats", None):  # the funnel of the work that is on disk
            print(_table(exc.finished_stats))  # type: ignore[attr-defined]
        print(f"imgdiff: error: {os_error_line(exc)}", file=sys.stderr)
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
    from imgdiff.survey import Survey

    if getattr(args, "limit", None) is not None and args.limit > sys.maxsize:
        raise UsageError(f"--limit {args.limit}: must be at most {sys.maxsize}")
    if getattr(args, "handler", None) is not None:  # commands that register themselves
        return args.handler(args)
    if args.command == "recipes":
        return _recipes(args)
    if args.command == "models":
        from imgdiff.commands.models import models_command

        return models_command(args)
    if args.command == "status":
        from imgdiff.survey import status

        survey = status(args.dir)
        print(
            json.dumps({"rows": survey.rows(), "blocked": survey.blocked}) if args.json else survey.report()
        )
        return 0
    if args.command in ("eval", "predict"):
        from imgdiff.eval.cli import dispatch

        return dispatch(args)
    if args.command == "merge":
        from imgdiff.merge import merge

        print(_table(merge(args.dir)))
        return 0
    if args.command == "export":
        from imgdiff.export.cli_args import options_from_args

        exported = runner.export(args.dir, args.formats, args.to, options_from_args(args))
        for fmt, summary in exported.items():
            print(f"{fmt}: {json.dumps(summary)}")
        return 0
    try:
        if args.command in ("run", "demo"):
            recipe, out, limit = args.recipe if args.command == "run" else "quickstart", args.out, args.limit
            if args.command == "demo":
                out, limit = out or "imgdiff-demo", DEMO_PAIRS if limit is None else limit
            result = runner.run(
                recipe,
                out,
                limit=limit,
                seed=args.seed,
                overrides=args.sets,
                shard=args.shard,
                fresh=args.fresh,
                progress=not args.no_progress,
                dry_run=args.dry_run,
                engine=args.engine,
                ray=_ray_options(args),
                chunk_size=_chunk_size(args),
                gpu_memory_gb=_gpu_memory_gb(args),
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
    if isinstance(result, Survey):
        print(result.report())
        return 0
    print(_table(result.stats))
    for fmt, summary in result.exports.items():
        print(f"export {fmt}: {json.dumps(summary)}")
    if args.command == "rethreshold":
        print(_rethreshold_summary(before, result.stats))
    return 0


def _chunk_size(args: argparse.Namespace) -> int | None:
    if args.chunk_size is not None and (args.chunk_size < 1 or args.engine != "local"):
        raise UsageError(
            f"--chunk-size {args.chunk_size}: a number of records, 1 or more, with the local engine"
        )
    return args.chunk_size


def _gpu_memory_gb(args: argparse.Namespace) -> float | None:
    memory = args.gpu_memory_gb
    if memory is not None and (not math.isfinite(memory) or memory <= 0 or args.engine != "local"):
        raise UsageError(f"--gpu-memory-gb {memory}: a size in GB, more than 0, with the local engine")
    return memory


def _ray_options(args: argparse.Namespace) -> Any:
    from imgdiff.engine.ray import RayOptions

    if args.engine != "ray" and (args.address or args.workers != 1 or args.gpus_per_worker is not None):
        raise UsageError("--address, --workers and --gpus-per-worker go with --engine ray")
    if args.workers < 1:
        raise UsageError(f"--workers {args.workers}: must be 1 or more")
    if args.gpus_per_worker is not None and args.gpus_per_worker < 0:
        raise UsageError(f"--gpus-per-worker {args.gpus_per_worker}: must be 0 or more")
    return RayOptions(args.address, args.workers, args.gpus_per_worker)


def _recipes(args: argparse.Namespace) -> int:
    from imgdiff.errors import did_you_mean
    from imgdiff.recipe import builtin_recipes

    found = builtin_recipes()
    if args.action == "list":
        for name, text in sorted(found.items()):
            first = text.splitlines()[0].lstrip("# ") if text else ""
            print(f"{name:<20} {first}")
        return 0
    if args.name is None:
        raise UsageError(f"recipes show needs a recipe name (valid: {', '.join(sorted(found))})")
    if args.name not in found:
        raise UsageError(f"no built-in recipe '{args.name}'{did_you_mean(str(args.name), found)}")
    print(found[args.name], end="")
    return 0


def _top_reasons(rejected: dict[str, int], top: int = 3) -> str:
    """The step's most frequent rejection reasons, e.g. "changed_area_min 5, malformed_item 1"."""
    ranked = sorted(rejected.items(), key=lambda item: (-item[1], item[0]))
    shown = ", ".join(f"{code} {n}" for code, n in ranked[:top])
    return shown + (f", {len(ranked) - top} more" if len(ranked) > top else "")


def _table(stats: dict[str, Any]) -> str:
    rows = [
        (
            "stage",
            "in",
            "kept",
            "rejected",
            "reused",
            "computed",
            "pending",
            "seconds",
            "rec/s",
            "top reasons",
        )
    ]
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
                _top_reasons(s["rejected"]),
            )
        )
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            str(v).rjust(w) if 0 < i < len(r) - 1 else str(v).ljust(w)
            for i, (v, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in rows
    ]
    lines.append(
        f"records: {stats['records']} ({stats['kept']} kept, {stats['rejected']} rejected, "
        f"{stats['pending']} pending) in {stats['seconds']:.2f} s"
    )
    return "\n".join(lines)


def _previous_stats(out: str) -> dict[str, Any] | None:
    from imgdiff.store import RunStore

    return RunStore(out).read_stats()


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
