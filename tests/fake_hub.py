"""A real HTTP server on 127.0.0.1 that answers like the Hugging Face hub, for `models fetch` tests.

It serves model repos (local folders) with the part of the hub's HTTP API that
`huggingface_hub.snapshot_download` (2.x) calls, and plain files for release assets:
- `GET /api/models/<repo>/revision/<rev>`: the repo info, whose `sha` pins the commit;
- `GET /api/models/<repo>/tree/<rev>[/<dir>]`: the file listing (path, size, git blob id);
- `HEAD|GET /<repo>/resolve/<rev>/<file>`: the file, with the `X-Repo-Commit`, `ETag` and size
  headers the client checks before downloading;
- `GET /assets/<file>`: a release asset.
Anything else is a 404 with the hub's `X-Error-Code`. Every request is recorded, so tests can assert
what was fetched. Use it as a context manager; `url` is the endpoint (`HF_ENDPOINT`).
`write_hub_cache` lays a folder out as a finished download in a Hugging Face cache.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


def git_blob_id(data: bytes) -> str:
    """A file's git object id: what the hub gives as the ETag of a file not stored in LFS."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeHub:
    def __init__(self, repos: dict[str, Path], assets: dict[str, Path] | None = None) -> None:
        self.repos = {repo: _files(folder) for repo, folder in repos.items()}
        self.commits = {repo: _commit(files) for repo, files in self.repos.items()}
        self.assets = {name: path.read_bytes() for name, path in (assets or {}).items()}
        self.requests: list[tuple[str, str]] = []  # (method, path) in arrival order
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def file_downloads(self) -> list[str]:
        """Paths of the GET requests that sent a file's bytes (repo files and assets)."""
        return [p for m, p in self.requests if m == "GET" and ("/resolve/" in p or p.startswith("/assets/"))]

    def __enter__(self) -> FakeHub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:  # noqa: N802 (the stdlib's naming)
                hub._answer(self, body=False)

            def do_GET(self) -> None:  # noqa: N802
                hub._answer(self, body=True)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass  # keep test output clean; requests are recorded instead

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    # -- answering -------------------------------------------------------------------------------
    def _answer(self, handler: BaseHTTPRequestHandler, body: bool) -> None:
        path = unquote(urlsplit(handler.path).path)
        with self._lock:
            self.requests.append((handler.command, path))
        status, headers, data = self._route(path)
        handler.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(data))}.items():
            handler.send_header(key, value)
        handler.end_headers()
        if body:
            handler.wfile.write(data)

    def _route(self, path: str) -> tuple[int, dict[str, str], bytes]:
        if path.startswith("/assets/") and path.removeprefix("/assets/") in self.assets:
            return (
                200,
                {"Content-Type": "application/octet-stream"},
                self.assets[path.removeprefix("/assets/")],
            )
        api = path.startswith("/api/models/")
        rest = path.removeprefix("/api/models/") if api else path.removeprefix("/")
        repo = next((r for r in self.repos if rest.startswith(r + "/")), None)
        if repo is None:
            return _error(404, "RepoNotFound", f"Repository not found: {path}")
        kind, _, tail = rest.removeprefix(repo + "/").partition("/")
        revision, _, inner = tail.partition("/")
        if revision not in ("main", self.commits[repo]):
            return _error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        files = self.repos[repo]
        if api and kind == "revision":
            info = {"id": repo, "modelId": repo, "sha": self.commits[repo], "private": False}
            info["siblings"] = [{"rfilename": name} for name in files]
            return _json(info)
        if api and kind == "tree":
            return _json(_tree(files, inner))
        if not api and kind == "resolve" and inner in files:
            data = files[inner]
            headers = {"X-Repo-Commit": self.commits[repo], "ETag": f'"{git_blob_id(data)}"'}
            return 200, {**headers, "Content-Type": "application/octet-stream"}, data
        return _error(404, "EntryNotFound", f"Entry not found: {path}")


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` by its '/'-separated path, in a stable order."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _commit(files: dict[str, bytes]) -> str:
    """A 40-hex commit id that changes with the repo's contents."""
    digest = hashlib.sha1()
    for name, data in files.items():
        digest.update(f"{name}\0{git_blob_id(data)}\0".encode())
    return digest.hexdigest()


def _tree(files: dict[str, bytes], under: str) -> list[dict[str, object]]:
    """The recursive listing of the files under a folder ("" is the root) and their folders."""
    prefix = f"{under.strip('/')}/" if under.strip("/") else ""
    entries: dict[str, dict[str, object]] = {}
    for name, data in files.items():
        if not name.startswith(prefix):
            continue
        parts = name.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if (folder + "/").startswith(prefix) and folder + "/" != prefix:
                entries.setdefault(folder, {"type": "directory", "oid": "0" * 40, "size": 0, "path": folder})
        entries[name] = {"type": "file", "oid": git_blob_id(data), "size": len(data), "path": name}
    return list(entries.values())


def _json(value: object) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "application/json"}, json.dumps(value).encode()


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"error": message}).encode()
    return (
        status,
        {"Content-Type": "application/json", "X-Error-Code": code, "X-Error-Message": message},
        body,
    )


def write_hub_cache(cache: Path, repo: str, folder: Path) -> Path:
    """Put `folder` into a Hugging Face cache as the `main` snapshot of `repo` (as a finished
    download leaves it, files copied instead of linked to blobs); returns the snapshot folder."""
    commit = _commit(_files(folder))
    storage = cache / f"models--{repo.replace('/', '--')}"
    snapshot = storage / "snapshots" / commit
    shutil.copytree(folder, snapshot)
    (storage / "refs").mkdir(parents=True, exist_ok=True)
    (storage / "refs" / "main").write_text(commit)
    return snapshot
