"""Fixtures every channel suite shares: simulators and a notification receiver on loopback.

Real servers on 127.0.0.1 (port 0), real `aiohttp.ClientSession`s; nothing mocks HTTP. A new
channel adds its simulator fixture next to `wechat_simulator` and reuses `receiver`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from channels.sim.kit import SimulatorSettings
from channels.wechat import WeChatAccount, WeChatChannel, build
from channels.wechat.sandbox import credentials_path, ensure_sandbox
from channels.wechat.sim.app import build_app
from channels.wechat.sim.state import SIMULATOR, WeChatSimulator

TIME_FACTOR = 0.001
"""Channel retry schedules run a thousand times faster in tests (15 s → 15 ms)."""


@dataclass
class Served:
    """An application listening on loopback."""

    app: web.Application
    runner: web.AppRunner
    base_url: str


async def serve(app: web.Application) -> Served:
    """Start `app` on 127.0.0.1 with an ephemeral port."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    return Served(app, runner, f"http://{host}:{port}")


@dataclass
class WeChatSim:
    """A running WeChat Pay simulator and what a test needs to drive it."""

    served: Served
    sandbox_dir: Path

    @property
    def base_url(self) -> str:
        return self.served.base_url

    @property
    def state(self) -> WeChatSimulator:
        return self.served.app[SIMULATOR]

    def account_config(self, **overrides: object) -> WeChatAccount:
        """A routing-config entry pointing at this simulator and the sandbox bundle."""
        entry: dict[str, object] = {
            "type": "wechat",
            "base_url": self.base_url,
            "credentials": {"file": str(credentials_path(self.sandbox_dir))},
        }
        entry.update(overrides)
        return WeChatAccount.model_validate(entry)


@pytest.fixture(scope="session")
def wechat_sandbox_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One sandbox for the session: RSA key generation is the slow part of a start."""
    path = tmp_path_factory.mktemp("sandbox")
    ensure_sandbox(path)
    return path


@pytest.fixture
async def wechat_simulator(wechat_sandbox_dir: Path) -> AsyncIterator[WeChatSim]:
    settings = SimulatorSettings(sandbox_dir=wechat_sandbox_dir, seed=7, time_factor=TIME_FACTOR)
    served = await serve(build_app(settings))
    try:
        yield WeChatSim(served, wechat_sandbox_dir)
    finally:
        await served.runner.cleanup()


@pytest.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def wechat_channel(
    wechat_simulator: WeChatSim, http_session: aiohttp.ClientSession
) -> WeChatChannel:
    """`wechat_main` as the router would build it from its config."""
    config = wechat_simulator.account_config()
    return build("wechat_main", config, wechat_simulator.sandbox_dir, http_session)


@dataclass(frozen=True)
class Received:
    """One request the receiver got."""

    headers: CIMultiDictProxy[str]
    body: bytes


@dataclass
class Receiver:
    """A merchant's notification endpoint: records requests, answers as told."""

    url: str = ""
    replies: list[int] = field(default_factory=list)
    """Statuses for the next requests, in order; afterwards 200 `{"code":"SUCCESS"}`."""
    received: list[Received] = field(default_factory=list)
    _queue: asyncio.Queue[Received] = field(default_factory=asyncio.Queue)

    async def next(self, timeout: float = 10.0) -> Received:
        """The next request, waiting for it if need be."""
        return await asyncio.wait_for(self._queue.get(), timeout)

    async def take(self, count: int, timeout: float = 10.0) -> Sequence[Received]:
        return [await self.next(timeout) for _ in range(count)]

    async def handle(self, request: web.Request) -> web.Response:
        item = Received(CIMultiDictProxy(CIMultiDict(request.headers)), await request.read())
        self.received.append(item)
        self._queue.put_nowait(item)
        status = self.replies.pop(0) if self.replies else 200
        code = "SUCCESS" if status < 300 else "FAIL"
        return web.json_response({"code": code, "message": code}, status=status)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    box = Receiver()
    app = web.Application()
    app.router.add_post("/notify", box.handle)
    served = await serve(app)
    box.url = f"{served.base_url}/notify"
    try:
        yield box
    finally:
        await served.runner.cleanup()
