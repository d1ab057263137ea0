"""The Ray engine on a real Ray cluster started here on 127.0.0.1 with 2 CPUs: same bytes as the
local engine, a killed worker's batch retried, a killed driver resumed without recomputing."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
# Ray Data's own context module warns about its own deprecated settings when it is first used.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data")

from imgdiff import runner  # noqa: E402
from imgdiff.cli import main  # noqa: E402
from imgdiff.engine.ray import RayOptions  # noqa: E402
from imgdiff.survey import status  # noqa: E402

SRC = Path(__file__).resolve().parents[1] / "src"
ENV = {**os.environ, "PYTHONPATH": str(SRC), "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


@pytest.fixture(scope="module")
def cluster():
    """A Ray head on loopback with 2 CPUs for the whole module, started (and, at the end, stopped:
    only its own processes) by this process, which is also a driver; its address for others."""
    os.environ.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    context = ray.init(
        num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1"
    )
    yield context.address_info["gcs_address"]
    ray.shutdown()


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_ray_run_equals_local_byte_for_byte(cluster, tmp_path):
    local, remote = tmp_path / "local", tmp_path / "ray"
    batches = ["batch_size=4"]  # two source batches: two blocks, spread over the two workers
    expected = runner.run("quickstart", local, limit=8, overrides=batches)
    two = RayOptions(cluster, workers=2)
    result = runner.run("quickstart", remote, limit=8, overrides=batches, engine="ray", ray=two)
    assert (remote / "records.jsonl").read_bytes() == (local / "records.jsonl").read_bytes()
    assert _tree(remote / "images") == _tree(local / "images")
    assert _tree(remote / "export") == _tree(local / "export")
    assert [c.computed for c in result.outcome.counts] == [c.computed for c in expected.outcome.counts]
    assert result.outcome.counts[0].computed == 8
    assert status(remote).blocked == status(local).blocked
    # The verbs that read a run see a Ray-made run as a local one.
    for run in (local, remote):
        runner.rethreshold(run, ["pair_filter.similarity_min=0.999"])
    assert (remote / "records.jsonl").read_bytes() == (local / "records.jsonl").read_bytes()
    # A second run computes nothing.
    again = runner.run("quickstart", remote, limit=8, overrides=batches, engine="ray", ray=two)
    assert all(c.computed == 0 for c in again.outcome.counts)


# The kill tests: captions -> `edit` by a served LLM that answers one request at a time, slowly (a
# few seconds of work in all), so that there is a "mid-run". `edit` names a model: one actor pool.
RECORDS = 16
STEPS = ("source", "edit")


def _slow_edit(body: dict) -> str:
    text = "\n".join(m["content"] for m in body["messages"] if isinstance(m.get("content"), str))
    caption = re.search(r"a cat sitting on bench number \d+", text).group(0)
    time.sleep(0.1)
    return json.dumps(
        {"edited_caption": caption.replace("cat", "dog"), "old_object": "cat", "new_object": "dog"}
    )


@pytest.fixture(scope="module")
def edit_recipe(tmp_path_factory: pytest.TempPathFactory):
    from openai_server import ChatServer

    root = tmp_path_factory.mktemp("edits")
    captions = root / "captions.json"
    captions.write_text(
        json.dumps([{"caption": f"a cat sitting on bench number {i}"} for i in range(RECORDS)])
    )
    with ChatServer(_slow_edit) as server:
        llm = {
            "role": "text_generator",
            "backend": "openai",
            "base_url": server.url,
            "model": "s",
            "concurrency": 1,  # one request at a time: RECORDS x 0.1 s of work
        }
        recipe = {
            "seed": 0,
            "batch_size": 4,
            "source": {"type": "captions", "path": str(captions)},
            "models": {"llm": llm},
            "stages": [{"edit": {"method": "llm", "llm": "llm"}}],
        }
        path = root / "recipe.yaml"
        path.write_text(json.dumps(recipe))  # JSON is YAML
        yield path


def _command(recipe: Path, out: Path, address: str) -> list[str]:
    return ["run", str(recipe), "--out", str(out), "--no-progress", "--engine", "ray", "--address", address]


def _driver(recipe: Path, out: Path, address: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "imgdiff", *_command(recipe, out, address)]
    return subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _lines(run: Path, invocation: int | None = None) -> dict[str, list[str]]:
    """step -> the input ids of its part lines (of one invocation, or all), repeats kept."""
    found: dict[str, list[str]] = {}
    for step in STEPS:
        pattern = "part-*.jsonl" if invocation is None else f"part-{invocation:05d}-*.jsonl"
        found[step] = [i for path in sorted((run / "stages" / step).glob(pattern)) for i in _ids(path)]
    return found


def _ids(part: Path) -> list[str]:
    ids = []
    for line in part.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):  # a line cut short by a kill
            ids.append(json.loads(line)["in"])
    return ids


def _cluster_processes() -> dict[int, str]:
    """pid -> process title of this machine's Ray workers (titles start with `ray::`)."""
    found = {}
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            title = (entry / "cmdline").read_bytes().decode(errors="replace") if entry.name.isdigit() else ""
            if title.startswith("ray::"):
                found[int(entry.name)] = title
    return found


def _open_parts(pid: int, run: Path) -> list[Path]:
    """The run's part files this process holds open (an actor keeps its part files open)."""
    held = []
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = Path(os.readlink(fd))
                if target.is_relative_to(run / "stages") and target.name.startswith("part-"):
                    held.append(target)
    return held


def _working_actor(run: Path, running: Callable[[], bool], timeout: float = 60) -> tuple[int, str, Path]:
    """(pid, title, part file) of a worker holding an `edit` part file with lines in it: one that
    has started work (actors keep their part files open), as soon as there is one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and running():
        for pid, title in _cluster_processes().items():
            for part in _open_parts(pid, run):
                if part.parent.name == "edit" and _ids(part):
                    return pid, title, part
        time.sleep(0.02)
    raise AssertionError("no worker wrote an edit line while the run went on")


def _gone(pids: list[int], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while any(Path(f"/proc/{pid}").exists() for pid in pids):
        assert time.monotonic() < deadline, "the killed job's workers are still alive"
        time.sleep(0.05)


def _records(run: Path) -> list[str]:
    return [json.loads(line)["id"] for line in (run / "records.jsonl").read_text().splitlines()]


def test_killed_actor_is_restarted_and_every_record_is_written_once(cluster, tmp_path, edit_recipe):
    out = tmp_path / "run"
    killed: dict = {}

    def kill_a_working_actor() -> None:  # beside the run, which this process drives
        try:
            pid, title, part = _working_actor(out, lambda: not finished.is_set())
            killed.update(pid=pid, title=title, part=part, done=set(_ids(part)))
            os.kill(pid, signal.SIGKILL)
            killed["at"] = time.time()
        except AssertionError as exc:
            killed["error"] = exc

    finished = threading.Event()
    killer = threading.Thread(target=kill_a_working_actor)
    killer.start()
    try:
        result = runner.run(edit_recipe, out, engine="ray", ray=RayOptions(cluster))
    finally:
        finished.set()
        killer.join()
    assert "error" not in killed, killed.get("error")
    assert "MapWorker" in killed["title"], f"not an actor: {killed['title']}"
    assert not Path(f"/proc/{killed['pid']}").exists()
    ids = _records(out)
    assert len(ids) == len(set(ids)) == RECORDS and result.stats["complete"]
    # The kill came mid-run, and work went on after it: a restarted actor wrote the rest.
    later = [p for p in (out / "stages" / "edit").glob("part-*.jsonl") if p != killed["part"]]
    after = {i for p in later for i in _ids(p)}
    assert 0 < len(killed["done"]) < RECORDS and after and after | killed["done"] == set(_lines(out)["edit"])
    assert len(set(_lines(out)["edit"])) == RECORDS
    assert all(p.stat().st_mtime >= killed["at"] for p in later)


def test_killed_driver_resumes_without_recomputing(cluster, tmp_path, edit_recipe):
    out = tmp_path / "run"
    driver = _driver(edit_recipe, out, cluster)
    _working_actor(out, lambda: driver.poll() is None)
    working = [pid for pid in _cluster_processes() if _open_parts(pid, out)]
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    _gone(working)  # the dead job's actors are stopped by the cluster
    before = _lines(out)
    assert 0 < len(set(before["edit"])) < RECORDS, "the driver was not killed mid-run"
    # The same command again (in this process: a driver's start-up is the slow part here).
    assert main(_command(edit_recipe, out, cluster)) == 0
    again = _lines(out, invocation=2)
    for step in STEPS:
        assert not set(again[step]) & set(before[step]), f"{step} recomputed finished inputs"
    everything = set(_lines(out)["edit"])
    assert len(everything) == RECORDS and set(again["edit"]) == everything - set(before["edit"])
    ids = _records(out)
    assert len(ids) == len(set(ids)) == RECORDS


def test_tiny_img_diff_recipe_under_ray_equals_local(cluster, tmp_path, tiny_img_diff):
    remote, local = tmp_path / "ray", tiny_img_diff.reference
    assert tiny_img_diff(remote, engine=cluster) == 0
    assert (remote / "records.jsonl").read_bytes() == (local / "records.jsonl").read_bytes()
    assert _tree(remote / "images") == _tree(local / "images")
    assert _tree(remote / "aux") == _tree(local / "aux")
    stats = json.loads((remote / "stats.json").read_text())
    assert [step["computed"] for step in stats["stages"]] == [4, 4, 4, 4, 4, 4]  # every model stage ran
