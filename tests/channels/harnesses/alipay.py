"""The contract suite's harness for Alipay: the simulator on loopback, `alipay_main` built from
its routing-config entry, and a buyer who pays with whatever the action gave them.

The account's total timeout is one second, so the suite's hang test ends quickly. Sandbox keys
are generated once per test process and copied into each harness's folder: RSA key
generation is most of a simulator's start-up time.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from channels.alipay import AlipayAccount, build
from channels.alipay.sandbox import alipay_key_path, credentials_path, ensure_sandbox
from channels.alipay.sim.app import build_app
from channels.base import Action
from tests.channels.harness import Harness
from tests.channels.harnesses.common import channel_harness, snapshot_sandbox, write_sandbox

AUTH_CODE = "286648488111111111"
"""A payment code the simulator pays at once (codes starting with 26 ask for a password)."""
BUYER_ID = "2088102146225135"


@functools.cache
def _sandbox_files() -> dict[str, str]:
    """The sandbox's two files, generated once per process (names relative to the sandbox)."""
    return snapshot_sandbox(
        ensure_sandbox, lambda root: (credentials_path(root), alipay_key_path(root))
    )


def install_sandbox(sandbox_dir: Path) -> Path:
    """Write the process's sandbox account under `sandbox_dir` (mode 0600, like the real one)."""
    return write_sandbox(sandbox_dir, _sandbox_files())


def buyer_code(action: Action) -> str:
    """What the buyer got: the QR string, the page URL, the app order string or trade_no.

    A barcode payment waiting for the buyer's password (`none`) is found by its auth code.
    """
    if action.type == "qr_code" and action.qr_code:
        return action.qr_code
    if action.type == "redirect" and action.url:
        return action.url
    params: Mapping[str, str] = action.params or {}
    return params.get("order_string") or params.get("trade_no") or AUTH_CODE


@asynccontextmanager
async def harness(tmp_path: Path, session: aiohttp.ClientSession) -> AsyncIterator[Harness]:
    """The alipay simulator and `alipay_main`, for the contract suite."""
    sandbox = install_sandbox(tmp_path / "sandbox")
    async with channel_harness(
        tmp_path,
        session,
        name="alipay",
        sandbox_dir=sandbox,
        credentials_file=credentials_path(sandbox),
        seed=5,
        build_app=build_app,
        account=AlipayAccount,
        build=build,
        buyer_code=buyer_code,
        auth_code=AUTH_CODE,
        payer_id=BUYER_ID,
    ) as running:
        yield running
