"""The contract suite's harness for UnionPay: the simulator on loopback, `unionpay_main` built
from its routing-config entry, and a buyer who pays with whatever the action gave them.

The sandbox is written from the committed test chain, so starting a harness makes no RSA keys.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from channels.base import Action
from channels.unionpay import UnionPayAccount, build
from channels.unionpay.sandbox import credentials_path
from channels.unionpay.sim.app import build_app
from tests.channels.harness import Harness
from tests.channels.harnesses.common import channel_harness, check
from tests.channels.unionpay.keys import install_sandbox

AUTH_CODE = "6225880137370011234"
"""A UnionPay payment code (19 digits starting 62) the simulator takes at once."""


@asynccontextmanager
async def harness(tmp_path: Path, session: aiohttp.ClientSession) -> AsyncIterator[Harness]:
    """The unionpay simulator and `unionpay_main`, for the contract suite."""
    sandbox = install_sandbox(tmp_path / "sandbox")

    async def buyer_code(action: Action) -> str:
        """The tn, the QR code, or the form's orderId once the browser has posted the form.

        A payment-code consume waiting for the buyer (`none`) is found by its payment code.
        """
        if action.type == "form_post" and action.url and action.fields:
            async with session.post(action.url, data=dict(action.fields)) as response:
                await check(response, "the browser's form post")
            return action.fields["orderId"]
        if action.type == "qr_code" and action.qr_code:
            return action.qr_code
        if action.type == "app_params" and action.params:
            return action.params["tn"]
        return AUTH_CODE

    async with channel_harness(
        tmp_path,
        session,
        name="unionpay",
        sandbox_dir=sandbox,
        credentials_file=credentials_path(sandbox),
        seed=11,
        build_app=build_app,
        account=UnionPayAccount,
        build=build,
        buyer_code=buyer_code,
        auth_code=AUTH_CODE,
        payer_id=None,
    ) as running:
        yield running
