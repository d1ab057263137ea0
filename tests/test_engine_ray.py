"""The Ray engine on a real Ray cluster started here on 127.0.0.1 with 2 CPUs: same bytes as the
local engine, a killed worker's batch retried, a killed driver resumed without recomputing."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
# Ray Data's own context module warns about its own deprecated settings when it is first used.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data")

from imgdiff import runner  # noqa: E402
from imgdiff.engine.ray import RayOptions  # noqa: E402
from imgdiff.survey import status  # noqa: E402

SRC = Path(__file__).resolve().parents[1] / "src"
ENV = {**os.environ, "PYTHONPATH": str(SRC), "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
STEPS = ("source", "pair_filter", "regions", "describe")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    """A head node on loopback for the whole module; this process joins it as a driver."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"127.0.0.1:{port}"
    start = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", f"--port={port}"]
    start += ["--node-ip-address=127.0.0.1", "--num-cpus=2", "--num-gpus=0", "--include-dashboard=false"]
    subprocess.run(start, env=ENV, check=True, capture_output=True)
    os.environ.update(RAY_AUTH_MODE="disabled")
    ray.init(address=address, log_to_driver=False)
    yield address
    ray.shutdown()
    subprocess.run([sys.executable, "-m", "ray.scripts.scripts", "stop", "--force"], env=ENV, check=False)


def _run(out: Path, engine: str, limit: int = 24, address: str | None = None):
    return runner.run("quickstart", out, limit=limit, engine=engine, ray=RayOptions(address))


def _lines(run: Path, invocation: int | None = None) -> dict[str, list[str]]:
    """step -> the input ids of its part lines (of one invocation, or all), repeats kept."""
    found: dict[str, list[str]] = {}
    for step in STEPS:
        pattern = "part-*.jsonl" if invocation is None else f"part-{invocation:05d}*.jsonl"
        ids = found[step] = []
        for path in sorted((run / "stages" / step).glob(pattern)):
            for line in path.read_text().splitlines():
                with contextlib.suppress(json.JSONDecodeError):  # a line cut short by the kill
                    ids.append(json.loads(line)["in"])
    return found


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_ray_run_equals_local_byte_for_byte(cluster, tmp_path):
    local, remote = tmp_path / "local", tmp_path / "ray"
    _run(local, "local")
    result = _run(remote, "ray", address=cluster)
    assert (remote / "records.jsonl").read_bytes() == (local / "records.jsonl").read_bytes()
    assert _tree(remote / "images") == _tree(local / "images")
    assert _tree(remote / "export") == _tree(local / "export")
    assert [c.computed for c in result.outcome.counts] == [24, 24, 21, 21]
    assert status(remote).blocked == status(local).blocked
    # The verbs that read a run see a Ray-made run as a local one.
    for run in (local, remote):
        runner.rethreshold(run, ["pair_filter.similarity_min=0.999"])
    assert (remote / "records.jsonl").read_bytes() == (local / "records.jsonl").read_bytes()
    # A second run computes nothing.
    again = _run(remote, "ray", address=cluster)
    assert all(c.computed == 0 for c in again.outcome.counts)


def _wait_for_parts(run: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not any(_lines(run)["source"]):
        assert time.monotonic() < deadline, "no part line appeared"
        time.sleep(0.05)


def _worker_pids() -> list[int]:
    """Processes of this cluster running one of the pipeline's map functions."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if title.startswith("ray::") and "MapBatches" in title:
                pids.append(int(entry.name))
    return pids


def _driver(out: Path, address: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "imgdiff", "run", "quickstart", "--out", str(out), "--limit", "48"]
    command += ["--set", "batch_size=4", "--engine", "ray", "--address", address, "--no-progress"]
    return subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.slow  # 32 s here: a driver process of its own, 48 records in batches of 4
def test_killed_worker_is_retried_and_every_record_is_written_once(cluster, tmp_path):
    out = tmp_path / "run"
    driver = _driver(out, cluster)
    _wait_for_parts(out)
    pids = _worker_pids()
    assert pids, "no worker process to kill"
    os.kill(pids[0], signal.SIGKILL)
    assert driver.wait(timeout=300) == 0
    ids = [json.loads(line)["id"] for line in (out / "records.jsonl").read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 48
    assert json.loads((out / "stats.json").read_text())["complete"]


@pytest.mark.slow  # 37 s here: two driver processes
def test_killed_driver_resumes_without_recomputing(cluster, tmp_path):
    out = tmp_path / "run"
    driver = _driver(out, cluster)
    _wait_for_parts(out)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    time.sleep(2)  # the dead job's workers are stopped by the cluster
    before = _lines(out)
    assert len(before["source"]) < 48, "the driver finished before it was killed"
    rerun = _driver(out, cluster)
    assert rerun.wait(timeout=300) == 0
    again = _lines(out, invocation=2)
    for step in STEPS:
        assert not set(again[step]) & set(before[step]), f"{step} recomputed finished inputs"
    records = (out / "records.jsonl").read_text().splitlines()
    assert len(records) == len({json.loads(line)["id"] for line in records}) == 48


@pytest.mark.slow  # every model stage on tiny models, once per engine
def test_tiny_img_diff_recipe_under_ray_equals_local(cluster, tmp_path, tiny_models):
    import torch

    from openai_server import ChatServer
    from test_recipe_img_diff import CAPTIONS, scripted_edit
    from test_recipe_img_diff import _run as run_img_diff

    captions = tmp_path / "captions.json"
    captions.write_text(json.dumps([{"image_id": i, "caption": c} for i, (c, _, _) in enumerate(CAPTIONS)]))
    # Ray gives a worker as many threads as CPUs it asked for (one here); float sums in the models
    # depend on the thread count, so the local run uses one thread too.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with ChatServer(scripted_edit) as server:
        try:
            assert run_img_diff(tmp_path / "local", captions, server, tiny_models) == 0
        finally:
            torch.set_num_threads(threads)
        assert run_img_diff(tmp_path / "ray", captions, server, tiny_models, engine=cluster) == 0
    local, remote = tmp_path / "local", tmp_path / "ray"
    assert (remote / "records.jsonl").read_bytes() == (local / "records.jsonl").read_bytes()
    assert _tree(remote / "images") == _tree(local / "images")
    assert _tree(remote / "aux") == _tree(local / "aux")
