"""Driving Debian's Chromium against a live app, for the map pages' tests.

Playwright from PyPI drives /usr/bin/chromium (never `playwright install`: it downloads a
browser). The app runs under uvicorn on a free 127.0.0.1 port. Every request that leaves
127.0.0.1 is blocked and recorded, so a CDN link or a tile server slipping into a page
fails its test. Missing Chromium, Playwright or built assets skip, except in CI.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import uvicorn
from fastapi import FastAPI

from maps.local_assets import assets_built
from tests.conftest import IN_CI

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def unavailable(message: str) -> None:
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def require_assets() -> None:
    if not assets_built():
        unavailable("map assets not built: run `make assets`")


@dataclass
class LiveServer:
    url: str
    app: FastAPI


@contextmanager
def live_server(app: FastAPI) -> Iterator[LiveServer]:
    """``app`` served by uvicorn in a thread.

    Binding port 0 ourselves and handing uvicorn the socket leaves no window in which
    another process could take the port.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield LiveServer(f"http://127.0.0.1:{sock.getsockname()[1]}", app)
    finally:
        uv.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextmanager
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        unavailable(f"no browser at {CHROMIUM} (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install playwright; never `playwright install`)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Watch:
    """What a page did that it must not: leave 127.0.0.1, log errors, fail requests."""

    outside: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert self.outside == [], f"requests left 127.0.0.1: {self.outside}"
        assert self.errors == [], f"console errors: {self.errors}"
        assert self.failed == [], f"failed requests: {self.failed}"


def watched_page(context: Any, allow_files: bool = False) -> tuple[Any, Watch]:
    """A new page in ``context`` whose every request off 127.0.0.1 is blocked and recorded."""
    watch = Watch()

    def guard(route: Any) -> None:
        url = route.request.url
        if urlsplit(url).hostname == "127.0.0.1" or (allow_files and url.startswith(("file:", "data:"))):
            route.continue_()
        else:
            watch.outside.append(url)
            route.abort()

    context.route("**/*", guard)
    page = context.new_page()
    page.on("console", lambda m: watch.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: watch.errors.append(str(e)))
    page.on("requestfailed", lambda r: watch.failed.append(f"{r.url} {r.failure}"))
    page.on("response", lambda r: watch.failed.append(f"{r.url} {r.status}") if r.status >= 400 else None)
    return page, watch


def open_ready_page(
    browser: Any, url: str, panel: str, *, viewport: dict[str, int], allow_files: bool = False, timeout_ms: int = 30_000
) -> tuple[Any, Any, Watch]:
    """``url`` in a new desktop context, once its panel (#``panel``) says data-status=ready."""
    context = browser.new_context(viewport=viewport, timezone_id="Asia/Shanghai")
    page, watch = watched_page(context, allow_files)
    page.goto(url)
    page.wait_for_selector(f"#{panel}[data-status=ready]", timeout=timeout_ms)
    return context, page, watch


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000, "the screenshot is blank"
    return path
