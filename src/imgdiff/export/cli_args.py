"""The flags of `imgdiff export`, and the options they make (the same as a recipe's `export:`)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from imgdiff.export.options import ExportOptions


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir")
    parser.add_argument(
        "--format",
        required=True,
        action="append",
        dest="formats",
        help="llava, sharegpt, internvl, parquet or webdataset (repeat for several)",
    )
    parser.add_argument("--to", help="folder to write into (default DIR/export)")
    parser.add_argument(
        "--where", metavar="EXPR", help="keep samples where EXPR holds, e.g. 'kind == \"removal\"'"
    )
    parser.add_argument("--split", metavar="NAME=SHARE,...", help="e.g. train=0.95,val=0.05")
    parser.add_argument("--dedup", action="store_true", help="drop repeated answers and near-duplicate pairs")
    parser.add_argument("--max-per-object", type=int, metavar="N", help="at most N samples per edited object")
    parser.add_argument("--image-format", choices=["png", "jpeg"])
    parser.add_argument(
        "--png-encoder",
        choices=["fast", "pillow"],
        help="fast (default: ISA-L) or pillow (the older exports' bytes, 8-9x slower); same pixels",
    )
    parser.add_argument("--jpeg-quality", type=int, metavar="Q")
    parser.add_argument("--workers", type=int, metavar="N", help="encoding threads (default 2)")


def options_from_args(args: argparse.Namespace) -> ExportOptions:
    """The options the flags name; those not given keep their defaults."""
    from imgdiff.export.options import build_options, parse_split

    given: dict[str, Any] = {
        key: getattr(args, key)
        for key in (
            "where",
            "dedup",
            "max_per_object",
            "image_format",
            "png_encoder",
            "jpeg_quality",
            "workers",
        )
        if getattr(args, key) is not None and getattr(args, key) is not False  # 0 is a value, not "unset"
    }
    if args.split is not None:
        given["split"] = parse_split(args.split)
    return build_options(given, "export")
