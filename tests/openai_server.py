"""A real OpenAI-compatible chat-completions server on 127.0.0.1 for tests and benchmarks.

It speaks HTTP on a free port in its own thread, so a client under test goes through its whole
network path (connection pool, timeouts, retries). Replies come from a script (a list consumed in
order, or a function of the request body), from a loaded generator backend (e.g. a tiny model), or,
with neither, echo the last user text. `fail_next` makes the next requests fail in one of the ways a
real server does:

    with ChatServer(["first answer", "second answer"]) as server:
        server.fail_next(1, "500")                 # one 500, then the script goes on
        entry = ModelEntry(role="text_generator", backend="openai", base_url=server.url, model="m")
        ...
        assert len(server.requests) == 3           # the retry shows in the request count

Failure modes (each consumes one request): "500" (an error body), "429" (with `Retry-After:
delay_s`), "400" (a bad-request error body), "drop" (close the connection without a response),
"slow" (sleep `delay_s`, then answer normally, unless the client gave up meanwhile). A failed request
consumes no scripted answer.
"""

from __future__ import annotations

import base64
import io
import json
import select
import socket
import threading
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

FAILURE_MODES = ("500", "429", "400", "drop", "slow")


class ChatServer:
    """An OpenAI-compatible chat-completions server on 127.0.0.1 (real HTTP, own thread)."""

    def __init__(
        self,
        answers: list[str] | Callable[[dict], str] | None = None,
        generator: object | None = None,
    ) -> None:
        if answers is not None and generator is not None:
            raise ValueError("give answers or a generator, not both")
        self.answers = deque(answers) if isinstance(answers, list) else answers
        self.generator = generator
        self.requests: list[dict] = []  # JSON bodies received, in order (failed ones included)
        self.headers: list[dict[str, str]] = []  # their HTTP headers (lower-case names), in the same order
        self._failures: deque[tuple[str, float]] = deque()
        self._lock = threading.Lock()
        self._generator_lock = threading.Lock()  # a model answers one request at a time
        self._closing = threading.Event()  # wakes "slow" handlers when the server stops
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread: threading.Thread | None = None

    def fail_next(self, n: int, mode: str, delay_s: float = 0.0) -> None:
        """Make the next `n` requests fail: "500" | "429" (Retry-After: delay_s) | "400" | "drop"
        (close the connection without a response) | "slow" (sleep delay_s, then answer)."""
        if mode not in FAILURE_MODES:
            raise ValueError(f"unknown failure mode {mode!r} (valid: {', '.join(FAILURE_MODES)})")
        with self._lock:
            self._failures.extend([(mode, delay_s)] * n)

    def __enter__(self) -> ChatServer:
        # A short poll interval: leaving the `with` block waits at most this long.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="chat-server", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- what the handler asks -------------------------------------------------------------------
    def _receive(self, body: dict, headers: dict[str, str]) -> tuple[str, float] | None:
        """Record the request; the failure it must get, if any."""
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            return self._failures.popleft() if self._failures else None

    def _answer(self, body: dict) -> str:
        if self.generator is not None:
            with self._generator_lock:
                return _generate(self.generator, body)
        if callable(self.answers):
            return self.answers(body)
        if self.answers is not None:
            with self._lock:
                if not self.answers:
                    raise LookupError("the scripted answers ran out")
                return self.answers.popleft()
        return _last_user_text(body["messages"])


def _handler_for(server: ChatServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real servers do: clients reuse connections
        # Headers and body go out in two writes; with Nagle's algorithm the second waits for the
        # client's delayed ACK (~40 ms per request on loopback).
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet in tests
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.rstrip("/").endswith("/models"):
                self._json(200, {"object": "list", "data": [{"id": "served", "object": "model"}]})
            else:
                self._json(404, _error(f"no route {self.path}", "not_found"))

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._json(404, _error(f"no route {self.path}", "not_found"))
                return
            try:
                body = json.loads(raw)
            except ValueError:
                self._json(400, _error("body is not JSON", "invalid_request_error"))
                return
            failure = server._receive(body, {k.lower(): v for k, v in self.headers.items()})
            mode, delay_s = failure if failure else (None, 0.0)
            if mode == "drop":
                self.close_connection = True  # no response at all: the client sees a dropped connection
                return
            if mode == "500":
                self._json(500, _error("scripted internal error", "server_error"))
                return
            if mode == "429":
                self._json(429, _error("rate limited", "rate_limit"), {"Retry-After": f"{delay_s:g}"})
                return
            if mode == "400":
                self._json(400, _error("scripted bad request", "invalid_request_error"))
                return
            if mode == "slow" and (server._closing.wait(delay_s) or self._client_gone()):
                return  # a client that timed out gets nothing, and consumes no scripted answer
            if not isinstance(body.get("messages"), list) or not body.get("model"):
                self._json(400, _error("model and messages are required", "invalid_request_error"))
                return
            try:
                text = server._answer(body)
            except Exception as exc:  # a broken script or generator is the server's fault: 500
                self._json(500, _error(f"{type(exc).__name__}: {exc}", "server_error"))
                return
            self._json(200, _completion(body, text))

        def _client_gone(self) -> bool:
            """Whether the client closed the connection (readable with nothing to read)."""
            readable, _, _ = select.select([self.connection], [], [], 0)
            try:
                return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
            except OSError:
                return True

        def _json(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client gave up (timed out) before the answer came
                self.close_connection = True

    return Handler


def _error(message: str, kind: str) -> dict:
    return {"error": {"message": message, "type": kind, "code": None}}


def _completion(body: dict, text: str) -> dict:
    prompt_words = sum(len(_text_of(m.get("content")).split()) for m in body["messages"])
    answer_words = len(text.split())
    max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
    # Usage counts words, not tokens: the scripted server has no tokenizer.
    finish = "length" if max_tokens is not None and answer_words >= max_tokens else "stop"
    return {
        "id": f"chatcmpl-{len(body['messages'])}",
        "object": "chat.completion",
        "created": 0,
        "model": body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": prompt_words,
            "completion_tokens": answer_words,
            "total_tokens": prompt_words + answer_words,
        },
    }


def _text_of(content: object) -> str:
    """The text of a message's content: a string, or the text parts of a content-part list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _last_user_text(messages: list[dict]) -> str:
    users = [m for m in messages if m.get("role") == "user"]
    return _text_of(users[-1].get("content")) if users else ""


def _images_of(content: object) -> list[np.ndarray]:
    """The images of a content-part list, decoded from their data URLs as RGB uint8 arrays."""
    from PIL import Image

    images = []
    for part in content if isinstance(content, list) else []:
        if isinstance(part, dict) and part.get("type") == "image_url":
            url = part["image_url"]["url"]
            header, _, data = url.partition(",")
            if not (header.startswith("data:image/") and header.endswith(";base64")):
                raise ValueError(f"only base64 data URLs are served, got {url[:40]!r}")
            with Image.open(io.BytesIO(base64.b64decode(data))) as image:
                images.append(np.asarray(image.convert("RGB")))
    return images


def _generate(generator: Any, body: dict) -> str:
    """One request answered by a TextGenerator or VisionTextGenerator backend."""
    from imgdiff.models.roles import Generation, VisionPrompt

    seed = body.get("seed")
    sampling = Generation(
        max_new_tokens=int(body.get("max_tokens") or body.get("max_completion_tokens") or 128),
        temperature=float(body.get("temperature") or 0.0),
        top_p=body.get("top_p"),
        seeds=[int(seed) if seed is not None else 0],  # a server without a seed in the request picks one
    )
    messages = body["messages"]
    if any(isinstance(m.get("content"), list) for m in messages):
        system = [_text_of(m["content"]) for m in messages if m.get("role") == "system"]
        user = [m for m in messages if m.get("role") == "user"][-1]
        prompt = VisionPrompt(
            text=_text_of(user["content"]),
            images=_images_of(user["content"]),
            system=system[0] if system else None,
        )
        return generator.generate([prompt], sampling)[0]
    chat = [{"role": m["role"], "content": _text_of(m.get("content"))} for m in messages]
    return generator.generate([chat], sampling)[0]
