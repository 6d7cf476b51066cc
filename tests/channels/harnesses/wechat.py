"""The contract suite's harness for WeChat Pay: the simulator on loopback, `wechat_main` built
from its routing-config entry, and a buyer who pays with whatever the action gave them.

The account's total timeout is one second, so the suite's hang test ends quickly. Sandbox keys
are generated once per test process and copied into each harness's folder: RSA key
generation is most of a simulator's start-up time.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from channels.base import Action
from channels.simkit import SimulatorSettings
from channels.wechat import WeChatAccount, build
from channels.wechat.sandbox import credentials_path, ensure_sandbox, platform_key_path
from channels.wechat.simulator import build_app
from tests.channels.conftest import TIME_FACTOR, serve
from tests.channels.harness import Harness

AUTH_CODE = "134567890123456789"
"""A WeChat payment code the simulator pays at once (codes starting 15 ask for a password)."""
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"


@functools.cache
def _sandbox_files() -> dict[str, str]:
    """The sandbox's two files, generated once per process (names relative to the sandbox)."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        ensure_sandbox(root)
        paths = (credentials_path(root), platform_key_path(root))
        return {str(path.relative_to(root)): path.read_text() for path in paths}


def install_sandbox(sandbox_dir: Path) -> Path:
    """Write the process's sandbox account under `sandbox_dir` (mode 0600, like the real one)."""
    for name, text in _sandbox_files().items():
        path = sandbox_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
    return sandbox_dir


def buyer_code(action: Action) -> str:
    """What the buyer got: the QR string, the h5 URL or the prepay id.

    A payment-code payment waiting for the buyer's password (`none`) is found by its code.
    """
    if action.type == "qr_code" and action.qr_code:
        return action.qr_code
    if action.type == "redirect" and action.url:
        return action.url
    params = action.params or {}
    if "prepayid" in params:
        return params["prepayid"]
    if "package" in params:
        return params["package"].removeprefix("prepay_id=")
    return AUTH_CODE


async def _check(response: aiohttp.ClientResponse, what: str) -> None:
    if response.status != 200:
        raise AssertionError(f"{what}: {response.status} {await response.text()}")


@asynccontextmanager
async def harness(tmp_path: Path, session: aiohttp.ClientSession) -> AsyncIterator[Harness]:
    sandbox = install_sandbox(tmp_path / "sandbox")
    settings = SimulatorSettings(sandbox_dir=sandbox, seed=3, time_factor=TIME_FACTOR)
    served = await serve(build_app(settings))
    base = served.base_url

    async def buyer(what: str, action: Action) -> None:
        code = buyer_code(action)
        async with session.post(f"{base}/sim/buyer/{what}", json={"code": code}) as response:
            await _check(response, f"/sim/buyer/{what}")

    async def pay(action: Action) -> None:
        await buyer("pay", action)

    async def decline(action: Action) -> None:
        await buyer("decline", action)

    async def set_faults(faults: dict[str, Any]) -> None:
        async with session.put(f"{base}/sim/faults", json=faults) as response:
            await _check(response, "/sim/faults")

    try:
        config = WeChatAccount.model_validate(
            {
                "type": "wechat",
                "base_url": base,
                "credentials": {"file": str(credentials_path(sandbox))},
                "timeouts": {"connect": 1, "total": 1},
            }
        )
        yield Harness(
            name="wechat",
            channel=build("wechat_main", config, tmp_path, session),
            sim_url=base,
            pay=pay,
            decline=decline,
            set_faults=set_faults,
            auth_code=AUTH_CODE,
            payer_id=OPENID,
        )
    finally:
        await served.runner.cleanup()
