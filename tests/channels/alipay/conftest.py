"""Alipay fixtures: the simulator on loopback, the adapter built from its config, a receiver
that acknowledges the way Alipay wants (the exact text `success`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from channels.alipay import AlipayAccount, AlipayChannel, build
from channels.alipay.sandbox import credentials_path, ensure_sandbox
from channels.alipay.sim.app import build_app
from channels.alipay.sim.state import SIMULATOR, AlipaySimulator
from channels.sim.kit import SimulatorSettings
from tests.channels.conftest import TIME_FACTOR, Received, Receiver, Served, serve


@dataclass
class AlipaySim:
    """A running Alipay simulator and what a test needs to drive it."""

    served: Served
    sandbox_dir: Path

    @property
    def base_url(self) -> str:
        return self.served.base_url

    @property
    def state(self) -> AlipaySimulator:
        return self.served.app[SIMULATOR]

    def account_config(self, **overrides: object) -> AlipayAccount:
        """A routing-config entry pointing at this simulator and the sandbox bundle."""
        entry: dict[str, object] = {
            "type": "alipay",
            "base_url": self.base_url,
            "credentials": {"file": str(credentials_path(self.sandbox_dir))},
        }
        entry.update(overrides)
        return AlipayAccount.model_validate(entry)


class AlipayReceiver(Receiver):
    """A merchant's notify_url: records posts; answers `success` (or `fail` when told)."""

    async def handle(self, request: web.Request) -> web.Response:
        item = Received(CIMultiDictProxy(CIMultiDict(request.headers)), await request.read())
        self.received.append(item)
        self._queue.put_nowait(item)
        status = self.replies.pop(0) if self.replies else 200
        return web.Response(status=status, text="success" if status == 200 else "fail")


@pytest.fixture(scope="session")
def alipay_sandbox_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One sandbox for the session: RSA key generation is the slow part of a start."""
    path = tmp_path_factory.mktemp("alipay-sandbox")
    ensure_sandbox(path)
    return path


async def start_simulator(
    sandbox_dir: Path, *, seed: int = 11, time_factor: float = TIME_FACTOR
) -> Served:
    """The simulator on a loopback port (stop it with `served.runner.cleanup()`)."""
    settings = SimulatorSettings(sandbox_dir=sandbox_dir, seed=seed, time_factor=time_factor)
    return await serve(build_app(settings))


@pytest.fixture
async def alipay_simulator(alipay_sandbox_dir: Path) -> AsyncIterator[AlipaySim]:
    served = await start_simulator(alipay_sandbox_dir)
    try:
        yield AlipaySim(served, alipay_sandbox_dir)
    finally:
        await served.runner.cleanup()


@pytest.fixture
def alipay_channel(
    alipay_simulator: AlipaySim, http_session: aiohttp.ClientSession
) -> AlipayChannel:
    """`alipay_main` as the router would build it from its config."""
    config = alipay_simulator.account_config()
    return build("alipay_main", config, alipay_simulator.sandbox_dir, http_session)


@pytest.fixture
async def alipay_receiver() -> AsyncIterator[AlipayReceiver]:
    box = AlipayReceiver()
    app = web.Application()
    app.router.add_post("/notify", box.handle)
    served = await serve(app)
    box.url = f"{served.base_url}/notify"
    try:
        yield box
    finally:
        await served.runner.cleanup()
