"""The contract suite's harness for Alipay: the simulator on loopback, `alipay_main` built from
its routing-config entry, and a buyer who pays with whatever the action gave them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from channels.alipay import AlipayAccount, build
from channels.alipay.sandbox import credentials_path
from channels.alipay.simulator import build_app
from channels.base import Action
from channels.simkit import SimulatorSettings
from tests.channels.conftest import TIME_FACTOR, serve
from tests.channels.harness import Harness

AUTH_CODE = "286648488111111111"
"""A payment code the simulator takes at once (codes starting with 26 ask for a password)."""
BUYER_ID = "2088102146225135"


def buyer_code(action: Action) -> str:
    """What the buyer got: the QR string, the page URL, the app order string or trade_no.

    A barcode payment waiting for the buyer (`none`) is found by its auth code.
    """
    if action.type == "qr_code" and action.qr_code:
        return action.qr_code
    if action.type == "redirect" and action.url:
        return action.url
    params: Mapping[str, str] = action.params or {}
    return params.get("order_string") or params.get("trade_no") or AUTH_CODE


@asynccontextmanager
async def harness(tmp_path: Path, session: aiohttp.ClientSession) -> AsyncIterator[Harness]:
    sandbox = tmp_path / "sandbox"
    settings = SimulatorSettings(sandbox_dir=sandbox, seed=5, time_factor=TIME_FACTOR)
    served = await serve(build_app(settings))
    base = served.base_url

    async def buyer(what: str, action: Action) -> None:
        async with session.post(f"{base}/sim/buyer/{what}", json={"code": buyer_code(action)}) as r:
            if r.status != 200:
                raise AssertionError(f"/sim/buyer/{what}: {r.status} {await r.text()}")

    async def pay(action: Action) -> None:
        await buyer("pay", action)

    async def decline(action: Action) -> None:
        await buyer("decline", action)

    async def set_faults(faults: dict[str, Any]) -> None:
        async with session.put(f"{base}/sim/faults", json=faults) as response:
            if response.status != 200:
                raise AssertionError(f"/sim/faults: {response.status} {await response.text()}")

    try:
        config = AlipayAccount.model_validate(
            {
                "type": "alipay",
                "base_url": base,
                "credentials": {"file": str(credentials_path(sandbox))},
            }
        )
        channel = build("alipay_main", config, tmp_path, session)
        yield Harness(
            name="alipay",
            channel=channel,
            sim_url=base,
            pay=pay,
            decline=decline,
            set_faults=set_faults,
            auth_code=AUTH_CODE,
            payer_id=BUYER_ID,
        )
    finally:
        await served.runner.cleanup()
