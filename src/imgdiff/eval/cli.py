"""The `eval` and `predict` commands: their arguments (`register`) and what they do (`dispatch`).
Every number printed follows its metric's name; `--json` gives the same numbers under the same names."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from imgdiff.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    """Add `eval` and `predict` to the `imgdiff` parser's subcommands."""
    evaluate = sub.add_parser("eval", help="score predictions: captions, mmvp, localization, describe")
    names = evaluate.add_subparsers(dest="name", required=True, metavar="NAME")

    captions = names.add_parser("captions", help="BLEU-1..4, METEOR, ROUGE-L, CIDEr-D (pycocoevalcap), x100")
    captions.add_argument("--pred", required=True, help="predictions (any format the docs list)")
    captions.add_argument(
        "--refs", required=True, help="references (COCO, Spot-the-Diff, Image-Edit-Request, dict)"
    )
    captions.add_argument(
        "--tokenizer", default="auto", help="auto (ptb with Java, else regex) | ptb | regex"
    )
    _common(captions)

    mmvp = names.add_parser("mmvp", help="MMVP pair accuracy and question accuracy")
    mmvp.add_argument("--pred", required=True, help="a predictions file, or a JSON {Index: answer text}")
    mmvp.add_argument("--questions", required=True, help="the MMVP folder (Questions.csv) or the CSV")
    mmvp.add_argument("--no-corrections", action="store_true", help="score with the key as released")
    _common(mmvp)

    loc = names.add_parser("localization", help="regions kept by a run, or a model's boxes (--pred)")
    loc.add_argument("dir", help="a run directory with ground truth")
    loc.add_argument("--pred", help="answers of `imgdiff predict run:DIR --task locate`")
    _common(loc)

    describe = names.add_parser("describe", help="a model's difference texts against a run's edits")
    describe.add_argument("dir", help="the run directory the answers are about")
    describe.add_argument(
        "--pred", required=True, help="answers of `imgdiff predict run:DIR --task describe`"
    )
    describe.add_argument("--tokenizer", default="auto", help="auto | ptb | regex (caption metrics)")
    _common(describe)

    predict = sub.add_parser("predict", help="run a vl_generator model over a benchmark, resumable")
    predict.add_argument("benchmark", help="mmvp | spot-the-diff | image-edit-request | run:DIR")
    predict.add_argument("--models", required=True, help="a recipe or models.yaml holding the entry")
    predict.add_argument("--model", help="the vl_generator entry's name (needed when there are several)")
    predict.add_argument("--out", required=True, help="the predictions file (.jsonl), appended per batch")
    predict.add_argument("--data", help="the benchmark's local folder (not for run:DIR)")
    predict.add_argument(
        "--split",
        help="Spot-the-Diff / Image-Edit-Request split (default test); for run:DIR, one split of "
        "the run's export (default: every kept pair)",
    )
    predict.add_argument("--export", help="for run:DIR --split: the export folder (default DIR/export/*)")
    predict.add_argument("--task", choices=["locate", "describe"], help="for run:DIR (default: locate)")
    predict.add_argument("--batch-size", type=int, default=8)
    predict.add_argument("--max-new-tokens", type=int, default=128)
    predict.add_argument("--limit", type=int, help="the first N items only")
    predict.add_argument("--fresh", action="store_true", help="discard the file's answers and start over")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="the numbers as one JSON object")
    parser.add_argument(
        "--allow-missing", action="store_true", help="score what both sides have instead of failing (exit 2)"
    )


def dispatch(args: argparse.Namespace) -> int:
    if args.command == "predict":
        return _predict(args)
    result, text = _evaluate(args)
    print(json.dumps(result) if args.json else text)
    return 0


def _evaluate(args: argparse.Namespace) -> tuple[dict, str]:
    if args.name == "captions":
        from imgdiff.eval import captions

        result = captions.evaluate(Path(args.pred), Path(args.refs), args.allow_missing, args.tokenizer)
        return result, captions.report(result)
    if args.name == "mmvp":
        from imgdiff.eval import mmvp

        questions = mmvp.read_questions(Path(args.questions), corrected=not args.no_corrections)
        result = mmvp.evaluate(questions, mmvp.read_answers(Path(args.pred)), args.allow_missing)
        result["answer_key"] = "as released" if args.no_corrections else "corrected (rows 99/100, 279/280)"
        return result, mmvp.report(result)
    if args.name == "describe":
        from imgdiff.eval import describe_rule
        from imgdiff.eval.run_answers import join

        records, lines = join(args.dir, Path(args.pred), "describe", args.allow_missing)
        answers = {i: str(line.get("answer", "")) for i, line in lines.items()}
        result = describe_rule.evaluate(records, answers, args.tokenizer)
        return result, describe_rule.report(result)
    from imgdiff.eval import localization

    if args.pred:
        result = localization.evaluate_answers(args.dir, Path(args.pred), args.allow_missing)
    else:
        result = localization.evaluate_dir(args.dir)
    return result, localization.report(result)


def _predict(args: argparse.Namespace) -> int:
    from imgdiff.eval.benchmarks import open_benchmark
    from imgdiff.eval.predict import load_entry, predict

    if args.limit is not None and args.limit < 0:
        raise UsageError("--limit must be at least 0")
    name, entry = load_entry(args.models, args.model)
    if args.benchmark.startswith("run:"):  # an imgdiff run's kept pairs (eval/run_items.py)
        from imgdiff.eval.run_items import run_benchmark

        export = Path(args.export) if args.export else None
        bench = run_benchmark(Path(args.benchmark[4:]), args.task or "locate", args.split, export)
    else:
        if args.export:
            raise UsageError("--export is for run:DIR benchmarks")
        bench = open_benchmark(args.benchmark, args.data, args.split or "test", args.task)

    def progress(done: int, total: int) -> None:
        print(f"predict: {done}/{total} asked", file=sys.stderr, flush=True)

    try:
        counts = predict(
            bench,
            Path(args.out),
            name,
            entry,
            batch_size=args.batch_size,
            max_new_tokens=args.max_new_tokens,
            fresh=args.fresh,
            limit=args.limit,
            on_batch=progress,
        )
    except KeyboardInterrupt:
        print("imgdiff: stopped; answered batches are saved: run the same command to finish", file=sys.stderr)
        return 130
    print(
        f"predict {bench.name} ({bench.task}): items {counts['items']}, reused {counts['reused']}, "
        f"asked {counts['asked']}, failed {counts['failed']} -> {args.out}"
    )
    return 0
