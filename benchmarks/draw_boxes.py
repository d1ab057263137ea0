"""Draw a run's truth (green) and predicted (red) boxes on a pair, side by side, to look at.

    python benchmarks/draw_boxes.py RUN_DIR OUT.png [--id RECORD_ID] [--kind replacement]

Without --id, takes the first record of the given kind that has truth.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

import imgdiff
from imgdiff.render import BAR


def draw(run_dir: Path, record_id: str | None, kind: str) -> tuple[str, Image.Image]:
    records = imgdiff.load_records(run_dir)
    record = next(r for r in records if (r.id == record_id if record_id else r.kind == kind and r.truth))
    a, b = (np.asarray(Image.open(run_dir / record.images[n]).convert("RGB")) for n in "ab")
    canvas = Image.fromarray(np.concatenate([a, np.zeros((a.shape[0], BAR, 3), np.uint8), b], axis=1))
    pen = ImageDraw.Draw(canvas)
    for offset in (0, a.shape[1] + BAR):
        for boxes, colour in (
            ([t.box for t in record.truth], (0, 255, 0)),
            ([r.box for r in record.regions], (255, 0, 0)),
        ):
            for x1, y1, x2, y2 in boxes:
                pen.rectangle([x1 + offset, y1, x2 - 1 + offset, y2 - 1], outline=colour, width=2)
    return record.id, canvas


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--id")
    parser.add_argument("--kind", default="replacement")
    args = parser.parse_args()
    rid, image = draw(args.run_dir, args.id, args.kind)
    image.save(args.out)
    print(f"{rid} -> {args.out}")
