"""Open a local page in headless Chromium (Debian's package, driven by Playwright) and say what broke.

Never a downloaded browser build: the executable is Debian's chromium, started with background
networking off. Every request that is not a file:// or data: URL is aborted and counted as a
failure, so a page that needs the network fails its test here.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    for name in (os.environ.get("IMGDIFF_CHROMIUM"), "chromium", "chromium-browser"):
        found = shutil.which(name) if name else None
        if found:
            return found
    return None


def require_browser() -> str:
    """The chromium executable; without it (or Playwright) the test skips locally and FAILS in CI."""
    path = chromium_path()
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        path = None
    if path is None:
        message = "headless browser tests need Debian's chromium and the playwright package"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must install them: see .ci/run)")
        pytest.skip(message)
    return path


@dataclass
class PageCheck:
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    broken_images: list[str] = field(default_factory=list)
    images: int = 0
    values: dict[str, str] = field(default_factory=dict)  # data-funnel / data-audit -> text


def open_page(page_file: Path, screenshot: Path | None = None) -> PageCheck:
    from playwright.sync_api import sync_playwright

    executable = require_browser()
    check = PageCheck()
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(
            profile,
            executable_path=executable,
            headless=True,
            args=ARGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            page = context.new_page()
            page.on("console", lambda m: m.type == "error" and check.console_errors.append(m.text))
            page.on("pageerror", lambda e: check.console_errors.append(str(e)))
            page.on("requestfailed", lambda r: check.failed_requests.append(f"{r.url} {r.failure}"))

            def route(handle: Any) -> None:
                url = handle.request.url
                if url.startswith(("file://", "data:")):
                    handle.continue_()
                else:
                    check.failed_requests.append(f"{url} (network)")
                    handle.abort()

            page.route("**/*", route)
            page.goto(page_file.resolve().as_uri(), wait_until="load")
            images = page.eval_on_selector_all(
                "img", "els => els.map(e => [e.getAttribute('src'), e.complete, e.naturalWidth])"
            )
            check.images = len(images)
            check.broken_images = [src for src, complete, width in images if not complete or width <= 0]
            check.values = page.eval_on_selector_all(
                "[data-funnel], [data-audit]",
                "els => Object.fromEntries(els.map(e => [e.dataset.funnel ?? ('audit:' + e.dataset.audit), "
                "e.textContent.trim()]))",
            )
            if screenshot is not None:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=True)
        finally:
            context.close()
    return check
