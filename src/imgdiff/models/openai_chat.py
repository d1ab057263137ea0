"""Backend `openai` for the `text_generator` and `vl_generator` roles: chat completions on a user's
OpenAI-compatible server (vLLM, SGLang, TGI, a hosted API), for generation at scale.

Each prompt is one `POST {base_url}/chat/completions` with the entry's `model`, the sampling of
`roles.Generation` and the prompt's seed (vLLM honours it, so a record's text is reproducible).
Vision prompts send the text and each image as a PNG data URL in one user turn, images first as the
transformers backend does. Requests run `concurrency` at a time; results come back in prompt order.

A server that is busy or flaky is waited for: 429 (after its Retry-After), 5xx, timeouts and dropped
connections are retried with exponential backoff (`tenacity`: 1 s doubling, at most 30 s), up to
`max_retries` times; a failure elsewhere in the batch cuts the wait short. Other 4xx answers (a
wrong model name, a prompt over the context) fail at once, as does a server that refuses the
connection (not running, wrong port). Every failure is one line naming the model, the URL, what
happened and after how many attempts.
"""

from __future__ import annotations

import base64
import io
import os
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import tenacity

from imgdiff.errors import UsageError
from imgdiff.models.loading import first_line
from imgdiff.models.roles import Generation, VisionPrompt

if TYPE_CHECKING:
    from imgdiff.models import ModelEntry


class ChatServerError(UsageError):
    """The chat server failed a request for good (exit 2, one line)."""


class _Stopped(Exception):
    """Another prompt of the batch failed; this one gives up waiting."""


class _Retry(Exception):
    """One attempt failed in a way that trying again may mend (429, 5xx, a timeout, a dropped
    connection); `retry_after` is the server's wish for the wait (429's Retry-After)."""

    def __init__(self, problem: str, retry_after: float | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.retry_after = retry_after


def load_text(name: str, entry: ModelEntry) -> OpenAITextGenerator:
    return OpenAITextGenerator(name, entry)


def load_vision_text(name: str, entry: ModelEntry) -> OpenAIVisionTextGenerator:
    return OpenAIVisionTextGenerator(name, entry)


class ChatClient:
    """Posts chat-completion requests with retries and bounded concurrency."""

    def __init__(
        self, name: str, entry: ModelEntry, backoff_s: float = 1.0, max_backoff_s: float = 30.0
    ) -> None:
        assert entry.base_url is not None and entry.model is not None  # ModelEntry checks this
        self.name = name
        self.model = entry.model
        self.url = entry.base_url.rstrip("/") + "/chat/completions"
        self.timeout_s = entry.timeout_s
        self.max_retries = entry.max_retries
        self.concurrency = entry.concurrency
        self.backoff_s = backoff_s  # the first retry's wait; it doubles with each retry
        self.max_backoff_s = max_backoff_s
        key = os.environ.get(entry.api_key_env) if entry.api_key_env else None
        self._http = httpx.Client(
            timeout=httpx.Timeout(entry.timeout_s),
            headers={"Authorization": f"Bearer {key}"} if key else {},
            limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency),
        )

    def complete_all(self, conversations: list[list[dict[str, Any]]], sampling: Generation) -> list[str]:
        """The answer to each conversation, in order; the first request that fails for good raises."""
        if sampling.seeds and len(sampling.seeds) != len(conversations):
            raise ValueError(f"{len(sampling.seeds)} seeds for {len(conversations)} prompts")
        bodies = [self.body(messages, sampling, i) for i, messages in enumerate(conversations)]
        stop = threading.Event()
        if self.concurrency == 1 or len(bodies) <= 1:
            return [self.complete(body, stop) for body in bodies]
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(bodies)), thread_name_prefix="chat")
        futures = [pool.submit(self.complete, body, stop) for body in bodies]
        try:
            wait(futures, return_when=FIRST_EXCEPTION)
            for future in futures:  # the first failure, in prompt order
                if future.done() and future.exception() is not None:
                    raise future.exception()  # type: ignore[misc]
            return [future.result() for future in futures]
        finally:
            stop.set()  # requests still waiting to retry give up
            pool.shutdown(wait=False, cancel_futures=True)

    def body(self, messages: list[dict[str, Any]], sampling: Generation, index: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": sampling.max_new_tokens,
            "temperature": sampling.temperature,
        }
        if sampling.top_p is not None:
            body["top_p"] = sampling.top_p
        if sampling.seeds:
            body["seed"] = sampling.seeds[index]
        return body

    def complete(self, body: dict[str, Any], stop: threading.Event) -> str:
        """One request, retried on 429, 5xx, timeouts and dropped connections."""
        attempts = self.max_retries + 1
        backoff = tenacity.wait_exponential(multiplier=self.backoff_s, max=self.max_backoff_s)

        def wait(state: tenacity.RetryCallState) -> float:
            failure = state.outcome.exception() if state.outcome else None
            asked = failure.retry_after if isinstance(failure, _Retry) else None
            return asked if asked is not None else backoff(state)

        def sleep(seconds: float) -> None:
            if stop.wait(seconds):  # another prompt of the batch failed for good
                raise _Stopped()

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Retry),
            stop=tenacity.stop_after_attempt(attempts),
            wait=wait,
            sleep=sleep,
            reraise=True,  # the last _Retry, not tenacity's RetryError
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self.attempt(body, attempt.retry_state.attempt_number)
        except _Retry as last:
            raise self.error(f"gave up after {attempts} attempts, the last: {last.problem}") from None
        raise AssertionError("unreachable: tenacity returns or raises")

    def attempt(self, body: dict[str, Any], attempt: int) -> str:
        """One try: the answer, `_Retry` when trying again may help, `ChatServerError` when not."""
        try:
            response = self._http.post(self.url, json=body)
        except httpx.ConnectError as exc:  # refused or unresolvable: nobody is serving there
            raise self.error(
                f"cannot connect ({first_line(exc)}) on attempt {attempt}; is the server running?"
            ) from None
        except httpx.TimeoutException:
            raise _Retry(f"no answer within {self.timeout_s:g} s") from None
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            raise _Retry(f"connection dropped ({first_line(exc)})") from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:  # a malformed URL: retrying cannot help
            raise self.error(f"{first_line(exc)} (attempt {attempt}, not retried)") from None
        if response.status_code == 200:
            return self.answer_of(response, attempt)
        problem = f"HTTP {response.status_code}: {_server_message(response)}"
        if response.status_code == 429:
            raise _Retry(problem, retry_after=_retry_after_s(response))
        if response.status_code >= 500:
            raise _Retry(problem)
        raise self.error(f"{problem} (attempt {attempt}, not retried)")

    def answer_of(self, response: httpx.Response, attempt: int) -> str:
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise self.error(f"answered without choices[0].message.content (attempt {attempt})") from None
        return (content or "").strip()

    def error(self, what: str) -> ChatServerError:
        return ChatServerError(f"model '{self.name}' ({self.model} at {self.url}): {what}")

    def close(self) -> None:
        self._http.close()


class OpenAITextGenerator(ChatClient):
    """`roles.TextGenerator` on a chat-completions server."""

    def generate(self, prompts: list[list[dict[str, str]]], sampling: Generation) -> list[str]:
        return self.complete_all([list(chat) for chat in prompts], sampling)


class OpenAIVisionTextGenerator(ChatClient):
    """`roles.VisionTextGenerator` on a chat-completions server that accepts image content parts."""

    def generate(self, prompts: list[VisionPrompt], sampling: Generation) -> list[str]:
        return self.complete_all([messages_of(prompt) for prompt in prompts], sampling)


def messages_of(prompt: VisionPrompt) -> list[dict[str, Any]]:
    """One user turn: each image as a PNG data URL, then the text (after an optional system turn)."""
    messages: list[dict[str, Any]] = []
    if prompt.system:
        messages.append({"role": "system", "content": prompt.system})
    parts: list[dict[str, Any]] = [
        {"type": "image_url", "image_url": {"url": png_data_url(image)}} for image in prompt.images
    ]
    parts.append({"type": "text", "text": prompt.text})
    messages.append({"role": "user", "content": parts})
    return messages


def png_data_url(image: np.ndarray) -> str:
    """The image as a data URL: a lossless PNG, at zlib level 1 as the run store writes them (fast,
    and a backend does not reach into the run layer for three lines)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image)).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _retry_after_s(response: httpx.Response) -> float | None:
    """Retry-After in seconds (a number, or an HTTP date), when the server sent one."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds())
    except (TypeError, ValueError):
        return None


def _server_message(response: httpx.Response) -> str:
    """The error message of an OpenAI-style error body, else the start of the body."""
    try:
        error = response.json().get("error")
        message = error.get("message") if isinstance(error, dict) else error
    except (ValueError, AttributeError):
        message = None
    return first_line(message or response.text or response.reason_phrase)
