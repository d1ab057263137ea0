"""Backend `openai` against a real chat-completions server on 127.0.0.1 (tests/openai_server.py):
request shape, order under concurrency, every failure mode of a server, and answers from the tiny
models served over HTTP matching the in-process backends."""

from __future__ import annotations

import base64
import io
import socket
import threading
import time
from typing import Any

import numpy as np
import pytest
from PIL import Image

from imgdiff.errors import UsageError
from imgdiff.models import ModelEntry, ModelPool
from imgdiff.models.openai_chat import ChatServerError, OpenAITextGenerator, OpenAIVisionTextGenerator
from imgdiff.models.roles import Generation, VisionPrompt
from openai_server import ChatServer

CHAT = [{"role": "user", "content": "a photo of a cat"}]


def client(url: str, role: str = "text_generator", **fields: Any) -> Any:
    """The backend as a recipe would get it (through the model pool), with short waits."""
    entry = ModelEntry(role=role, backend="openai", base_url=url, model="served", **fields)
    backend = ModelPool({"m": entry}).get("m")
    backend.backoff_s = 0.01
    return backend


def test_pool_loads_both_roles() -> None:
    assert isinstance(client("http://127.0.0.1:9/v1"), OpenAITextGenerator)
    assert isinstance(client("http://127.0.0.1:9/v1", role="vl_generator"), OpenAIVisionTextGenerator)


def test_text_request_carries_sampling_seed_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMGDIFF_TEST_KEY", "sekret")
    with ChatServer(["  first  ", "second"]) as server:
        llm = client(server.url, api_key_env="IMGDIFF_TEST_KEY", concurrency=1)
        sampling = Generation(max_new_tokens=32, temperature=0.8, top_p=0.95, seeds=[11, 12])
        chats = [CHAT, [{"role": "system", "content": "be brief"}, *CHAT]]
        assert llm.generate(chats, sampling) == ["first", "second"]
    first, second = server.requests
    assert first == {
        "model": "served",
        "messages": CHAT,
        "max_tokens": 32,
        "temperature": 0.8,
        "top_p": 0.95,
        "seed": 11,
    }
    assert second["messages"][0] == {"role": "system", "content": "be brief"} and second["seed"] == 12
    assert server.headers[0]["authorization"] == "Bearer sekret"


def test_greedy_request_has_no_top_p_or_seed_when_not_given() -> None:
    with ChatServer() as server:
        assert client(server.url).generate([CHAT], Generation(max_new_tokens=8)) == ["a photo of a cat"]
    (body,) = server.requests
    assert body["temperature"] == 0.0 and "top_p" not in body and "seed" not in body


def test_vision_request_sends_images_as_png_data_urls() -> None:
    rng = np.random.default_rng(0)
    images = [
        rng.integers(0, 256, (20, 30, 3), dtype=np.uint8),
        rng.integers(0, 256, (8, 8, 3), dtype=np.uint8),
    ]
    with ChatServer(["it changed"]) as server:
        vl = client(server.url, role="vl_generator")
        prompt = VisionPrompt("what is the difference", images, system="answer briefly")
        assert vl.generate([prompt], Generation(max_new_tokens=16)) == ["it changed"]
    system, user = server.requests[0]["messages"]
    assert system == {"role": "system", "content": "answer briefly"}
    *image_parts, text_part = user["content"]
    assert text_part == {"type": "text", "text": "what is the difference"}
    for part, image in zip(image_parts, images, strict=True):
        header, data = part["image_url"]["url"].split(",", 1)
        assert part["type"] == "image_url" and header == "data:image/png;base64"
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(base64.b64decode(data)))), image)


def test_results_keep_prompt_order_and_concurrency_is_bounded() -> None:
    in_flight, most = 0, 0
    lock = threading.Lock()

    def answer(body: dict) -> str:
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)
        # later prompts answer sooner, so completion order differs from prompt order
        time.sleep(0.01 * (12 - int(body["messages"][0]["content"])))
        with lock:
            in_flight -= 1
        return "answer " + body["messages"][0]["content"]

    with ChatServer(answer) as server:
        llm = client(server.url, concurrency=3)
        chats = [[{"role": "user", "content": str(i)}] for i in range(12)]
        assert llm.generate(chats, Generation()) == [f"answer {i}" for i in range(12)]
    assert most == 3


def test_500_is_retried_and_recovers() -> None:
    with ChatServer(["ok"]) as server:
        server.fail_next(2, "500")
        assert client(server.url, max_retries=2).generate([CHAT], Generation()) == ["ok"]
        assert len(server.requests) == 3


def test_429_waits_for_retry_after_and_recovers() -> None:
    with ChatServer(["ok"]) as server:
        server.fail_next(1, "429", delay_s=0.3)
        started = time.perf_counter()
        assert client(server.url).generate([CHAT], Generation()) == ["ok"]
        assert time.perf_counter() - started >= 0.3  # not the 0.01 s backoff: the server's wish
        assert len(server.requests) == 2


def test_retry_after_as_seconds_or_an_http_date() -> None:
    from datetime import datetime, timedelta, timezone
    from email.utils import format_datetime

    import httpx

    from imgdiff.models.openai_chat import _retry_after_s

    def wait(value: str | None) -> float | None:
        return _retry_after_s(httpx.Response(429, headers={"Retry-After": value} if value else {}))

    in_a_minute = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=60), usegmt=True)
    assert 55 <= wait(in_a_minute) <= 60
    assert wait("2.5") == 2.5 and wait("-3") == 0.0 and wait("soon") is None and wait(None) is None


def test_dropped_connection_is_retried_and_recovers() -> None:
    with ChatServer(["ok"]) as server:
        server.fail_next(1, "drop")
        assert client(server.url).generate([CHAT], Generation()) == ["ok"]
        assert len(server.requests) == 2


def test_slow_answer_times_out_is_retried_then_fails_after_the_limit() -> None:
    with ChatServer(["ok"]) as server:
        llm = client(server.url, timeout_s=0.3, max_retries=2)
        server.fail_next(1, "slow", delay_s=2.0)
        assert llm.generate([CHAT], Generation()) == ["ok"]
        assert len(server.requests) == 2
        server.fail_next(3, "slow", delay_s=2.0)
        with pytest.raises(ChatServerError) as failed:
            llm.generate([CHAT], Generation())
    message = str(failed.value)
    assert "\n" not in message and isinstance(failed.value, UsageError)
    assert f"model 'm' (served at {server.url}/chat/completions)" in message
    assert message.endswith("gave up after 3 attempts, the last: no answer within 0.3 s")
    assert len(server.requests) == 5


def test_500_past_the_retry_limit_fails_with_one_line() -> None:
    with ChatServer(["never"]) as server:
        server.fail_next(10, "500")
        with pytest.raises(
            ChatServerError, match=r"gave up after 3 attempts, the last: HTTP 500: scripted internal error$"
        ):
            client(server.url, max_retries=2).generate([CHAT], Generation())
        assert len(server.requests) == 3


def test_400_fails_at_once_without_retry() -> None:
    with ChatServer(["never"]) as server:
        server.fail_next(1, "400")
        with pytest.raises(
            ChatServerError, match=r"HTTP 400: scripted bad request \(attempt 1, not retried\)$"
        ):
            client(server.url).generate([CHAT], Generation())
        assert len(server.requests) == 1


def test_failure_in_a_concurrent_batch_raises_it() -> None:
    with ChatServer(lambda body: "ok") as server:
        server.fail_next(1, "400")
        with pytest.raises(ChatServerError, match="HTTP 400"):
            client(server.url, concurrency=4).generate([CHAT] * 8, Generation())


def test_malformed_url_fails_at_once() -> None:
    with pytest.raises(
        ChatServerError, match=r"model 'm' \(served at 127.0.0.1:1/v1/chat/completions\): .*not retried"
    ):
        client("127.0.0.1:1/v1").generate([CHAT], Generation())


def test_server_not_running_fails_quickly_with_one_line() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    started = time.perf_counter()
    with pytest.raises(ChatServerError) as failed:
        client(url, max_retries=5).generate([CHAT], Generation())
    assert time.perf_counter() - started < 2
    message = str(failed.value)
    assert "\n" not in message
    assert message.startswith(f"model 'm' (served at {url}/chat/completions): cannot connect")
    assert message.endswith("on attempt 1; is the server running?")


def test_tiny_llm_served_over_http_answers_as_in_process(tiny_models: Any) -> None:
    local = ModelPool({"llm": ModelEntry(**tiny_models("llm"))}).get("llm")
    chats = [
        CHAT,
        [{"role": "system", "content": "answer with one sentence"}, {"role": "user", "content": "a dog"}],
    ]
    greedy = Generation(max_new_tokens=12)
    sampled = Generation(max_new_tokens=12, temperature=1.0, top_p=0.9, seeds=[5, 6])
    with ChatServer(generator=local) as server:
        remote = client(server.url, concurrency=2)
        assert remote.generate(chats, greedy) == local.generate(chats, greedy)
        assert remote.generate(chats, sampled) == local.generate(chats, sampled)


def test_tiny_llava_served_over_http_answers_as_in_process(tiny_models: Any) -> None:
    local = ModelPool({"llava": ModelEntry(**tiny_models("llava"))}).get("llava")
    rng = np.random.default_rng(1)
    prompts = [
        VisionPrompt("describe the region", [rng.integers(0, 256, (40, 64, 3), dtype=np.uint8)]),
        VisionPrompt(
            "what is the difference", [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)] * 2, "be brief"
        ),
    ]
    greedy = Generation(max_new_tokens=10)
    with ChatServer(generator=local) as server:
        assert client(server.url, role="vl_generator").generate(prompts, greedy) == local.generate(
            prompts, greedy
        )
