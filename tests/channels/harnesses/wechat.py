"""The contract suite's harness for WeChat Pay: the simulator on loopback, `wechat_main` built
from its routing-config entry, and a buyer who pays with whatever the action gave them.

The account's total timeout is one second, so the suite's hang test ends quickly. Sandbox keys
are generated once per test process and copied into each harness's folder: RSA key
generation is most of a simulator's start-up time.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from channels.base import Action
from channels.wechat import WeChatAccount, build
from channels.wechat.sandbox import credentials_path, ensure_sandbox, platform_key_path
from channels.wechat.sim.app import build_app
from tests.channels.harness import Harness
from tests.channels.harnesses.common import channel_harness, snapshot_sandbox, write_sandbox

AUTH_CODE = "134567890123456789"
"""A WeChat payment code the simulator pays at once (codes starting 15 ask for a password)."""
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"


@functools.cache
def _sandbox_files() -> dict[str, str]:
    """The sandbox's two files, generated once per process (names relative to the sandbox)."""
    return snapshot_sandbox(
        ensure_sandbox, lambda root: (credentials_path(root), platform_key_path(root))
    )


def install_sandbox(sandbox_dir: Path) -> Path:
    """Write the process's sandbox account under `sandbox_dir` (mode 0600, like the real one)."""
    return write_sandbox(sandbox_dir, _sandbox_files())


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


@asynccontextmanager
async def harness(tmp_path: Path, session: aiohttp.ClientSession) -> AsyncIterator[Harness]:
    """The wechat simulator and `wechat_main`, for the contract suite."""
    sandbox = install_sandbox(tmp_path / "sandbox")
    async with channel_harness(
        tmp_path,
        session,
        name="wechat",
        sandbox_dir=sandbox,
        credentials_file=credentials_path(sandbox),
        seed=3,
        build_app=build_app,
        account=WeChatAccount,
        build=build,
        buyer_code=buyer_code,
        auth_code=AUTH_CODE,
        payer_id=OPENID,
    ) as running:
        yield running
