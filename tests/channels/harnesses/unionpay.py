"""The contract suite's harness for UnionPay: the simulator on loopback, `unionpay_main` built
from its routing-config entry, and a buyer who pays with whatever the action gave them.

The sandbox is written from the committed test chain, so starting a harness makes no RSA keys.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from channels.base import Action
from channels.simkit import SimulatorSettings
from channels.unionpay import UnionPayAccount, build
from channels.unionpay.sandbox import credentials_path
from channels.unionpay.simulator import build_app
from tests.channels.conftest import TIME_FACTOR, serve
from tests.channels.harness import Harness
from tests.channels.unionpay.keys import install_sandbox

AUTH_CODE = "6225880137370011234"
"""A UnionPay payment code (19 digits starting 62) the simulator takes at once."""


async def _check(response: aiohttp.ClientResponse, what: str) -> None:
    if response.status != 200:
        raise AssertionError(f"{what}: {response.status} {await response.text()}")


@asynccontextmanager
async def harness(tmp_path: Path, session: aiohttp.ClientSession) -> AsyncIterator[Harness]:
    sandbox = install_sandbox(tmp_path / "sandbox")
    settings = SimulatorSettings(sandbox_dir=sandbox, seed=11, time_factor=TIME_FACTOR)
    served = await serve(build_app(settings))
    base = served.base_url

    async def buyer_code(action: Action) -> str:
        """The tn, the QR code, or the form's orderId once the browser has posted the form.

        A payment-code consume waiting for the buyer (`none`) is found by its payment code.
        """
        if action.type == "form_post" and action.url and action.fields:
            async with session.post(action.url, data=dict(action.fields)) as response:
                await _check(response, "the browser's form post")
            return action.fields["orderId"]
        if action.type == "qr_code" and action.qr_code:
            return action.qr_code
        if action.type == "app_params" and action.params:
            return action.params["tn"]
        return AUTH_CODE

    async def buyer(what: str, action: Action) -> None:
        code = await buyer_code(action)
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
        config = UnionPayAccount.model_validate(
            {
                "type": "unionpay",
                "base_url": base,
                "credentials": {"file": str(credentials_path(sandbox))},
                # Well under the contract suite's injected hangs, so they end fast.
                "timeouts": {"connect": 1, "total": 1},
            }
        )
        yield Harness(
            name="unionpay",
            channel=build("unionpay_main", config, tmp_path, session),
            sim_url=base,
            pay=pay,
            decline=decline,
            set_faults=set_faults,
            auth_code=AUTH_CODE,
            payer_id=None,
        )
    finally:
        await served.runner.cleanup()
