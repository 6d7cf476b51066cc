"""The WeChat Pay adapter checks the bill's SHA1 before it yields a line: a simulator that
states another hash than its file's gets the statement refused; a download the channel
refuses is the channel's error, in the channel's words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from channels.base import CreateOrder, StatementLine
from channels.errors import ChannelRejected
from channels.sim.bills import BillDesk
from channels.statement import StatementInvalid
from channels.wechat import WeChatChannel
from channels.wechat.protocol.wire import CHINA_TIME
from channels.wechat.sim import bill
from tests.channels.conftest import WeChatSim


async def test_a_bill_whose_hash_is_not_its_files_is_refused(
    wechat_channel: WeChatChannel,
    wechat_simulator: WeChatSim,
    http_session: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = datetime.now(UTC)
    order = CreateOrder(
        order_no="pay_statementhash01",
        created_at=now,
        amount=1999,
        currency="CNY",
        method="qr",
        description="Mug",
        notify_url="http://127.0.0.1:9/notify",
        expires_at=now + timedelta(minutes=5),
    )
    created = await wechat_channel.create(order)
    async with http_session.post(
        f"{wechat_simulator.base_url}/sim/buyer/pay", json={"code": created.action.qr_code}
    ) as response:
        assert response.status == 200
    today = datetime.now(CHINA_TIME).date()
    assert [line.order_no async for line in wechat_channel.statement(today)] == [order.order_no]

    monkeypatch.setattr(bill.Bill, "sha1", property(lambda self: "0" * 40))
    seen: list[StatementLine] = []

    async def read() -> None:
        async for line in wechat_channel.statement(today):
            seen.append(line)

    with pytest.raises(StatementInvalid) as caught:
        await read()
    assert caught.value.code == "STATEMENT_HASH"
    assert seen == []

    monkeypatch.setattr(BillDesk, "get", lambda self, token: None)
    with pytest.raises(ChannelRejected) as refused:
        await read()
    assert refused.value.code == "RESOURCE_NOT_EXISTS"
    assert seen == []
