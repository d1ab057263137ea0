"""Peak memory of a parquet export against its size: flat means streamed, not built in memory.

    python benchmarks/export_memory.py [--samples 1000,5000,20000] [--size 128] [--workers 2]
                                       [--row-group-mb 100]

Makes a small quickstart run (20 scenes), then runs of N records that reuse its pairs' image files
under new ids with the box moved (so N distinct samples cost no pipeline time), and exports each
to parquet in a fresh process (default options), printing JSON: samples, seconds, peak RSS in MiB,
the parquet size and its row groups. Memory grows until the first row group is full (at most
`row_group_mb` of pictures, held as Arrow), then stays flat.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import imgdiff
from imgdiff.record import Record
from imgdiff.store import RunStore

CHILD = """
import json, resource, sys, time
from pathlib import Path
from imgdiff.export import export_run
started = time.perf_counter()
options = {"workers": int(sys.argv[2]), "row_group_mb": int(sys.argv[3])}
summary = export_run(Path(sys.argv[1]), ["parquet"], options=options)
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
files = sorted((Path(sys.argv[1]) / "export" / "parquet").rglob("*.parquet"))
size = sum(p.stat().st_size for p in files)
import pyarrow.parquet as pq
groups = sum(pq.ParquetFile(p).num_row_groups for p in files)
print(json.dumps({"samples": summary["parquet"]["samples"], "seconds": round(seconds, 1),
                  "peak_rss_mib": round(peak), "parquet_mib": round(size / 2**20), "row_groups": groups}))
"""


def widened(base: Path, out: Path, n: int) -> Path:
    """A copy of `base` whose records.jsonl holds n kept records reusing base's image files."""
    shutil.copytree(base, out, ignore=shutil.ignore_patterns("export"))
    kept = [r for r in imgdiff.load_records(base) if r.kept and any(x.difference for x in r.regions)]
    records = []
    for i in range(n):
        data = kept[i % len(kept)].to_dict()
        data.update(id=f"{i:012x}", source_index=i, child_index=[])
        data["regions"] = data["regions"][:1]  # one sample per record, its box cut shorter by
        x1, y1, x2, y2 = data["regions"][0]["box"]  # 0-22 px so pictures differ (identical ones
        data["regions"][0]["box"] = [x1, y1, x2, max(y1 + 1, y2 - i % 23)]  # would shrink the file)
        records.append(Record.from_dict(data))
    RunStore(out).write_records(records)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", default="1000,5000,20000")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--row-group-mb", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        imgdiff.run("quickstart", base, limit=20, overrides=[f"source.size={args.size}", "export=[]"])
        for n in (int(x) for x in args.samples.split(",")):
            run = widened(base, Path(tmp) / f"run-{n}", n)
            child = subprocess.run(
                [sys.executable, "-c", CHILD, str(run), str(args.workers), str(args.row_group_mb)],
                capture_output=True,
                text=True,
            )
            if child.returncode:  # the child's own error, not a bare exit status
                sys.exit(f"export of {n} samples failed:\n{child.stderr.strip()[-2000:]}")
            print(child.stdout.strip(), flush=True)
            shutil.rmtree(run)
