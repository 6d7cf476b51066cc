"""The settlement file comes from the account's `file_transfer_url` when it names one
(production UnionPay serves file transfer from its own host): an adapter whose `base_url`
answers nothing still reads the day's statement from the simulator named there."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import aiohttp

from channels.statement import CHINA_TIME
from channels.unionpay import UnionPayAccount, build
from channels.unionpay.sandbox import credentials_path
from tests.channels.harnesses.unionpay import harness
from tests.channels.test_contract import new_order
from tests.conftest import loopback_socket, url_of


async def test_the_statement_is_fetched_from_the_file_transfer_url(
    tmp_path: Path, http_session: aiohttp.ClientSession
) -> None:
    with loopback_socket() as silent:  # bound, never listening: a connection is refused
        dead = url_of(silent)
    async with harness(tmp_path, http_session) as h:
        order = new_order(h, amount=1234)
        await h.pay((await h.channel.create(order)).action)
        config = UnionPayAccount.model_validate(
            {
                "type": "unionpay",
                "base_url": dead,
                "file_transfer_url": h.sim_url,
                "credentials": {"file": str(credentials_path(tmp_path / "sandbox"))},
            }
        )
        channel = build("unionpay_files", config, tmp_path, http_session)
        today = datetime.now(CHINA_TIME).date()
        lines = [line async for line in channel.statement(today)]
    assert [(line.kind, line.order_no, line.amount) for line in lines] == [
        ("payment", order.order_no, 1234)
    ]
