"""Export speed: samples per second of `llava` before (the old exporter: one process, Pillow PNG at
zlib level 1, the pair decoded again for every sample) versus after (this exporter), on the demo
run (200 quickstart scenes at 512 px) and on scenes at 1024 px, all in one run of this script.

    python benchmarks/export_speed.py [--scenes 200] [--scenes-1024 50] [--repeats 3] [--workers 2]
                                      [--sizes 512,1024]

`after-pillow` writes the same bytes as before; `after-fast` uses `png_encoder: fast` (other bytes,
same pixels). Prints JSON: per size, the median samples/s of each variant and its ratio to before,
and whether after-pillow's files are byte-identical to before's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import imgdiff
from imgdiff.export import export_run
from imgdiff.export.driver import _sync
from imgdiff.export.samples import QUESTION, difference_samples
from imgdiff.record import Record
from imgdiff.render import png_bytes, side_by_side
from imgdiff.store import ImageLoader


def before(run: Path, to: Path) -> int:
    """What `llava` export did before: pair decoded per record, each picture encoded in turn."""
    images = ImageLoader(run)
    entries = []
    for record in sorted(imgdiff.load_records(run), key=Record.sort_key):
        samples = difference_samples(record)
        if not samples:
            continue
        a, b = images.load(record, "a"), images.load(record, "b")
        for sample in samples:
            rel = f"images/{record.id[:2]}/{sample.id}.png"
            (to / rel).parent.mkdir(parents=True, exist_ok=True)
            (to / rel).write_bytes(png_bytes(side_by_side(a, b, record.regions[sample.index].box)))
            entries.append({"id": sample.id, "image": rel, "question": QUESTION, "answer": sample.answer})
    (to / "data.json").write_text(json.dumps(entries))
    _sync(to)  # the old driver flushed every file before renaming the folder in, as the new one does
    return len(entries)


def after(run: Path, to: Path, **options: object) -> int:
    return export_run(run, ["llava"], to=to, options=options)["llava"]["samples"]


def measure(run: Path, repeats: int, workers: int) -> dict[str, object]:
    variants = {
        "before": lambda to: before(run, to),
        "after-pillow": lambda to: after(run, to, workers=workers),
        "after-fast": lambda to: after(run, to, workers=workers, png_encoder="fast"),
    }
    rates: dict[str, list[float]] = {name: [] for name in variants}
    identical = True
    for _ in range(repeats):  # interleaved, so load on the machine hits every variant alike
        outputs = {}
        for name, export in variants.items():
            folder = Path(tempfile.mkdtemp())
            started = time.perf_counter()
            samples = export(folder)
            rates[name].append(samples / (time.perf_counter() - started))
            outputs[name] = folder
        old = {p.relative_to(outputs["before"]): p.read_bytes() for p in outputs["before"].rglob("*.png")}
        new_root = outputs["after-pillow"] / "llava"
        new = {p.relative_to(new_root): p.read_bytes() for p in new_root.rglob("*.png")}
        identical = identical and old == new
    base = statistics.median(rates["before"])
    out: dict[str, object] = {"samples": samples}
    for name, values in rates.items():
        out[f"{name}_samples_per_s"] = round(statistics.median(values), 2)
        out[f"{name}_ratio"] = round(statistics.median(values) / base, 2)
    out["after_pillow_png_bytes_identical_to_before"] = identical
    return out


def demo_run(folder: Path, scenes: int, size: int) -> Path:
    out = folder / f"run-{size}"
    imgdiff.run("quickstart", out, limit=scenes, overrides=[f"source.size={size}", "export=[]"])
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=200)
    parser.add_argument("--scenes-1024", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sizes", default="512,1024", help="image sides to measure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = {"workers": args.workers}
        for size in (int(x) for x in args.sizes.split(",")):
            scenes = args.scenes_1024 if size >= 1024 else args.scenes
            run = demo_run(Path(tmp), scenes, size)
            result[f"{size}px"] = {"scenes": scenes, **measure(run, args.repeats, args.workers)}
        print(json.dumps(result, indent=2))
