"""Checkout fixtures: one headless Chromium (Debian's) for the whole session, reached by each
test through Playwright over the DevTools protocol, and the three-wallet router of the
end-to-end suite (`multi`). Nothing mocks HTTP: the browser follows real redirects between
the router and the simulators on loopback."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize, async_playwright

from tests.e2e.conftest import (  # noqa: F401 - fixtures used here
    harnesses,
    http,
    multi,
    router,
    simulator,
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

UA = {
    "wechat": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x1800323c) NetType/WIFI "
    "Language/zh_CN",
    "alipay": "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Mobile Safari/537.36 AlipayClient/10.5.96.8000 Language/zh-Hans",
    "unionpay": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 (com.unionpay.chsp) (cordova 4.5.4) "
    "(updebug 0) (version 1010) (UnionPay/1.0 CloudPay) (clientVersion 310)",
    "desktop": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36",
}
MOBILE: ViewportSize = {"width": 390, "height": 844}


@pytest.fixture(scope="session")
def chromium_endpoint() -> Iterator[str]:
    """One headless Chromium for the session; tests connect to it over CDP."""
    if CHROMIUM is None:
        pytest.fail("chromium is not installed (scripts/setup installs it)")
    profile = tempfile.mkdtemp(prefix="payrouter-chromium-")
    args = [
        CHROMIUM,
        "--headless=new",
        "--no-sandbox",  # runs as root in CI and the sandbox
        "--disable-gpu",
        "--no-first-run",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "about:blank",
    ]
    log = Path(profile) / "stderr.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(args, stderr=sink)  # noqa: S603
    endpoint = None
    # Chromium prints its DevTools address once it listens; nothing else signals readiness.
    deadline = time.monotonic() + 30
    while endpoint is None and proc.poll() is None and time.monotonic() < deadline:
        found = re.search(r"DevTools listening on (ws://\S+)", log.read_text())
        if found:
            endpoint = found.group(1)
        else:
            time.sleep(0.05)
    if endpoint is None:
        proc.kill()
        pytest.fail(f"chromium did not start: {log.read_text()[-2000:]}")
    try:
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


@dataclass
class Watched:
    """A page and every console error and uncaught exception seen on it."""

    page: Page
    context: BrowserContext
    errors: list[str] = field(default_factory=list)


@pytest.fixture
async def browser(chromium_endpoint: str) -> AsyncIterator[Browser]:
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    async with async_playwright() as p:
        connected = await p.chromium.connect_over_cdp(chromium_endpoint)
        try:
            yield connected
        finally:
            for context in connected.contexts[1:]:
                await context.close()


async def snap(watched: Watched, name: str) -> None:
    """With PAYROUTER_SCREENSHOTS=<folder>, save the page as <folder>/<name>.png (how the
    screenshots in docs/ are made: docs/checkout.md)."""
    folder = os.environ.get("PAYROUTER_SCREENSHOTS")
    if folder:
        await watched.page.screenshot(path=str(Path(folder) / f"{name}.png"))


async def open_page(browser: Browser, agent: str, lang: str = "zh-CN") -> Watched:
    """A fresh context (cookies, storage) with `agent`'s user agent and a phone's screen."""
    context = await browser.new_context(
        user_agent=UA[agent], viewport=MOBILE, locale=lang, extra_http_headers={}
    )
    context.set_default_timeout(8_000)
    page = await context.new_page()
    watched = Watched(page, context)
    page.on(
        "console",
        lambda msg: watched.errors.append(msg.text) if msg.type == "error" else None,
    )
    page.on("pageerror", lambda exc: watched.errors.append(str(exc)))
    page.on("dialog", lambda dialog: watched.errors.append(f"dialog: {dialog.message}"))
    return watched
