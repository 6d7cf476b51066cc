"""UnionPay fixtures: the simulator on loopback, the adapter pointed at it, and helpers.

The sandbox is written from the committed test chain (`tests.channels.unionpay.keys`), so no
test waits for RSA key generation; `test_config.py` checks `ensure_sandbox` itself once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from channels.sim.kit import SimulatorSettings
from channels.unionpay import UnionPayAccount, UnionPayChannel, build
from channels.unionpay.sandbox import credentials_path
from channels.unionpay.sim.app import build_app
from channels.unionpay.sim.state import SIMULATOR, UnionPaySimulator
from tests.channels.conftest import TIME_FACTOR, Served, serve
from tests.channels.unionpay.keys import install_sandbox


@dataclass
class UnionPaySim:
    """A running UnionPay simulator and what a test needs to drive it."""

    served: Served
    sandbox_dir: Path
    session: aiohttp.ClientSession

    @property
    def base_url(self) -> str:
        return self.served.base_url

    @property
    def state(self) -> UnionPaySimulator:
        return self.served.app[SIMULATOR]

    def account_config(self, **overrides: object) -> UnionPayAccount:
        """A routing-config entry pointing at this simulator and the sandbox bundle."""
        entry: dict[str, object] = {
            "type": "unionpay",
            "base_url": self.base_url,
            "credentials": {"file": str(credentials_path(self.sandbox_dir))},
        }
        entry.update(overrides)
        return UnionPayAccount.model_validate(entry)

    async def control(self, method: str, path: str, payload: object = None) -> tuple[int, Any]:
        """A control-plane call: status and JSON body."""
        async with self.session.request(method, self.base_url + path, json=payload) as response:
            return response.status, await response.json()

    async def buyer(self, what: str, code: str) -> tuple[int, Any]:
        return await self.control("POST", f"/sim/buyer/{what}", {"code": code})

    async def set_faults(self, **faults: object) -> None:
        status, body = await self.control("PUT", "/sim/faults", faults)
        assert status == 200, body

    async def post_form(self, url: str, fields: dict[str, str]) -> tuple[int, str]:
        """What the buyer's browser does with a `form_post` action."""
        async with self.session.post(url, data=fields) as response:
            return response.status, await response.text()


@pytest.fixture(scope="session")
def unionpay_sandbox_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_sandbox(tmp_path_factory.mktemp("unionpay-sandbox"))


@pytest.fixture
async def unionpay_simulator(
    unionpay_sandbox_dir: Path, http_session: aiohttp.ClientSession
) -> AsyncIterator[UnionPaySim]:
    settings = SimulatorSettings(sandbox_dir=unionpay_sandbox_dir, seed=7, time_factor=TIME_FACTOR)
    served = await serve(build_app(settings))
    try:
        yield UnionPaySim(served, unionpay_sandbox_dir, http_session)
    finally:
        await served.runner.cleanup()


@pytest.fixture
def unionpay_channel(
    unionpay_simulator: UnionPaySim, http_session: aiohttp.ClientSession
) -> UnionPayChannel:
    """`unionpay_main` as the router would build it from its config."""
    config = unionpay_simulator.account_config()
    return build("unionpay_main", config, unionpay_simulator.sandbox_dir, http_session)
