"""Export speed: samples per second of `llava` before (the exporter as it was when the export issue
was filed) versus after (this exporter), on the demo run (200 quickstart scenes at 512 px) and on
scenes at 1024 px, all in one run of this script.

    python benchmarks/export_speed.py [--scenes 200] [--scenes-1024 50] [--repeats 3] [--workers 2]
                                      [--sizes 512,1024]

`before` is that exporter, reproduced here so it stays measurable whatever the code becomes: one
process, the pair decoded by Pillow for each record, each picture encoded by Pillow at zlib level 1
(the run store's PNG setting then), then every file flushed in turn.
`after` is `export_run` with its defaults (`png_encoder: fast`, `--workers` threads), `after-1worker`
the same with one worker, `after-pillow` with `png_encoder: pillow` (the old bytes). Variants run
interleaved, so load on the machine hits each alike. Prints JSON per size: the median samples/s of
each variant and its ratio to before; whether after's pictures decode to before's pixels and
after-pillow's files equal before's bytes; and where one worker's time goes per sample (decoding
the pair by Pillow and by `read_fast`, drawing, encoding each way, writing, and what after does
instead: the picture's PNG straight from the pair's scanlines), measured on the first samples, and
the best ratio that breakdown allows with one free core per worker. Runs made by this script are
written by the run store of this code (`png_fast`, so `after` reads their scanlines); `before`
decodes every run by Pillow.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

import imgdiff
from imgdiff.export import export_run
from imgdiff.export.samples import QUESTION, difference_samples
from imgdiff.png import png_fast, png_from_filtered, read_fast, read_rows
from imgdiff.record import Record
from imgdiff.render import side_by_side, side_by_side_scanlines


def before(run: Path, to: Path) -> int:
    """The `llava` exporter before the export issue's work."""
    entries = []
    for record in sorted(imgdiff.load_records(run), key=Record.sort_key):
        samples = difference_samples(record)
        if not samples:
            continue
        a, b = (_decode(run / record.images[name]) for name in ("a", "b"))
        for sample in samples:
            rel = f"images/{record.id[:2]}/{sample.id}.png"
            (to / rel).parent.mkdir(parents=True, exist_ok=True)
            (to / rel).write_bytes(_pillow_png(side_by_side(a, b, record.regions[sample.index].box)))
            entries.append({"id": sample.id, "image": rel, "question": QUESTION, "answer": sample.answer})
    (to / "data.json").write_text(json.dumps(entries))
    for path in to.rglob("*"):  # it flushed every file before renaming the folder in
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
    return len(entries)


def _decode(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _pillow_png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def after(run: Path, to: Path, **options: object) -> int:
    return export_run(run, ["llava"], to=to, options=options)["llava"]["samples"]


def measure(run: Path, repeats: int, workers: int) -> dict[str, object]:
    variants = {
        "before": lambda to: before(run, to),
        "after": lambda to: after(run, to, workers=workers),
        "after-1worker": lambda to: after(run, to, workers=1),
        "after-pillow": lambda to: after(run, to, workers=workers, png_encoder="pillow"),
    }
    rates: dict[str, list[float]] = {name: [] for name in variants}
    checks = {"after_same_pixels_as_before": True, "after_pillow_same_bytes_as_before": True}
    for _ in range(repeats):
        outputs = {}
        for name, export in variants.items():
            folder = Path(tempfile.mkdtemp())
            started = time.perf_counter()
            samples = export(folder)
            rates[name].append(samples / (time.perf_counter() - started))
            outputs[name] = folder
        old = _pictures(outputs["before"])
        new = _pictures(outputs["after"] / "llava")
        compat = _pictures(outputs["after-pillow"] / "llava")
        checks["after_pillow_same_bytes_as_before"] &= old == compat
        checks["after_same_pixels_as_before"] &= old.keys() == new.keys() and all(
            np.array_equal(_decode(outputs["before"] / rel), _decode(outputs["after"] / "llava" / rel))
            for rel in sorted(old)[:20]
        )
        for folder in outputs.values():
            shutil.rmtree(folder)
    base = statistics.median(rates["before"])
    out: dict[str, object] = {"samples": samples}
    for name, values in rates.items():
        out[f"{name}_samples_per_s"] = round(statistics.median(values), 2)
        out[f"{name}_ratio"] = round(statistics.median(values) / base, 2)
    parts = breakdown(run)
    return {**out, **checks, "ms_per_sample_one_worker": parts, **ceiling(parts, workers)}


def ceiling(parts: dict[str, float], workers: int) -> dict[str, float]:
    """The best ratio the breakdown allows: before pays Pillow's decoding, drawing, Pillow's
    encoding and the writes in turn; after splits making the picture from the pair's scanlines
    (`read_rows`, `side_by_side_scanlines`, `png_from_filtered`) over the workers (one a core) and
    overlaps the writes."""
    before_ms = parts["decode_pair"] + parts["draw"] + parts["encode_pillow"] + parts["write_and_fsync"]
    after_ms = parts["picture_from_scanlines"] / workers
    return {f"ceiling_ratio_{workers}_free_cores": round(before_ms / after_ms, 2)}


def _pictures(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*.png")}


def breakdown(run: Path, samples: int = 40) -> dict[str, float]:
    """Where one worker's time goes per sample, on the run's first samples."""
    names = ["decode_pair", "decode_pair_fast", "draw", "encode_fast", "encode_pillow", "write_and_fsync"]
    names.append("picture_from_scanlines")  # what after does instead of decode_pair_fast + draw + encode_fast
    times = dict.fromkeys(names, 0.0)
    records = [r for r in sorted(imgdiff.load_records(run), key=Record.sort_key) if difference_samples(r)]
    with tempfile.TemporaryDirectory() as tmp:
        for n, record in enumerate(records[:samples]):
            clock = time.perf_counter()
            a, b = (_decode(run / record.images[name]) for name in ("a", "b"))
            times["decode_pair"] += time.perf_counter() - clock
            clock = time.perf_counter()
            for name in ("a", "b"):
                if read_fast(run / record.images[name]) is None:  # a run written by Pillow
                    _decode(run / record.images[name])
            times["decode_pair_fast"] += time.perf_counter() - clock
            clock = time.perf_counter()
            picture = side_by_side(a, b, record.regions[difference_samples(record)[0].index].box)
            times["draw"] += time.perf_counter() - clock
            for name, encode in (("encode_fast", png_fast), ("encode_pillow", _pillow_png)):
                clock = time.perf_counter()
                data = encode(picture)
                times[name] += time.perf_counter() - clock
            clock = time.perf_counter()
            rows = [read_rows(run / record.images[name]) for name in ("a", "b")]
            assert rows[0] is not None and rows[1] is not None, "runs made by this code's run store"
            box = record.regions[difference_samples(record)[0].index].box
            png_from_filtered(side_by_side_scanlines(rows[0], rows[1], box))
            times["picture_from_scanlines"] += time.perf_counter() - clock
            clock = time.perf_counter()
            path = Path(tmp) / f"{n}.png"
            path.write_bytes(data)
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
            times["write_and_fsync"] += time.perf_counter() - clock
    count = min(samples, len(records))
    return {name: round(1000 * seconds / count, 2) for name, seconds in times.items()}


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
    parser.add_argument("--runs", help="a folder of runs made before (run-512, run-1024): reused")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result: dict[str, object] = {"workers": args.workers, "cpus": os.cpu_count()}
        for size in (int(x) for x in args.sizes.split(",")):
            scenes = args.scenes_1024 if size >= 1024 else args.scenes
            made = Path(args.runs) / f"run-{size}" if args.runs else None
            run = made if made and made.is_dir() else demo_run(Path(args.runs or tmp), scenes, size)
            result[f"{size}px"] = {"scenes": scenes, **measure(run, args.repeats, args.workers)}
            print(json.dumps({f"{size}px": result[f"{size}px"]}), flush=True)
        result["load_average_after"] = os.getloadavg()
        print(json.dumps(result, indent=2))
