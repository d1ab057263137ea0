"""The `report` and `audit` commands: parsers and handlers, registered by imgdiff.cli.

Importing this module is cheap (matplotlib and Jinja2 load only when a command runs)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from imgdiff.errors import UsageError
from imgdiff.report import DEFAULT_GALLERY


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    report = sub.add_parser("report", help="a static HTML report of a run (DIR/report/index.html)")
    report.add_argument("dir", help="the run directory")
    report.add_argument("--out", help="folder to write into (default DIR/report)")
    report.add_argument(
        "--gallery",
        type=int,
        default=DEFAULT_GALLERY,
        metavar="N",
        help=f"kept pairs to show (default {DEFAULT_GALLERY})",
    )
    report.set_defaults(handler=_report)

    audit = sub.add_parser(
        "audit", help="draw a human-audit sheet of exported samples, or score a filled one"
    )
    audit.add_argument("dir", nargs="?", help="the run directory (to draw a sheet into DIR/audit/)")
    audit.add_argument("--n", type=int, default=200, help="samples to draw (default 200)")
    audit.add_argument("--score", metavar="SHEET.csv", help="score a filled sheet instead")
    audit.add_argument("--json", action="store_true", help="with --score: print JSON")
    audit.set_defaults(handler=_audit)


def _report(args: argparse.Namespace) -> int:
    from imgdiff.report import build_report

    index = build_report(args.dir, args.out, args.gallery)
    print(f"wrote {index}")
    return 0


def _audit(args: argparse.Namespace) -> int:
    from imgdiff.report import audit
    from imgdiff.report.page import write_audit_page

    if args.score:
        if args.dir:
            raise UsageError("audit: give either DIR (to draw a sheet) or --score SHEET.csv, not both")
        result = audit.score(Path(args.score))
        print(json.dumps(result) if args.json else audit.format_scores(result))
        return 0
    if not args.dir:
        raise UsageError("audit: give DIR to draw a sheet, or --score SHEET.csv to score one")
    rows = audit.draw(Path(args.dir), args.n)
    sheet = audit.write_sheet(Path(args.dir), rows)
    write_audit_page(Path(args.dir), rows, sheet.parent)
    print(f"wrote {sheet} ({len(rows)} samples) and {sheet.with_name('sheet.html')}: rate high/medium/low")
    return 0
