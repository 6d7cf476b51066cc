"""The contract-suite harness for UnionPay drives every method the channel offers."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from channels.base import CreateOrder, Method, OrderRef, TradeState
from channels.errors import ChannelUnavailable
from tests.channels.harnesses.unionpay import harness


def _order(method: Method, auth_code: str) -> CreateOrder:
    now = datetime.now(UTC)
    return CreateOrder(
        order_no=f"pay_{secrets.token_hex(10)}",
        created_at=now,
        amount=1999,
        currency="CNY",
        method=method,
        description="Contract",
        notify_url="http://127.0.0.1:9/notify",
        expires_at=now + timedelta(minutes=5),
        auth_code=auth_code,
    )


async def test_every_method_can_be_paid_and_declined(
    tmp_path: Path, http_session: aiohttp.ClientSession
) -> None:
    async with harness(tmp_path, http_session) as h:
        assert h.payer_id is None
        assert "jsapi" not in h.channel.capabilities.methods
        for method in sorted(h.channel.capabilities.methods - {"barcode"}):
            for step, state in ((h.pay, TradeState.SUCCEEDED), (h.decline, TradeState.FAILED)):
                order = _order(method, h.auth_code)
                result = await h.channel.create(order)
                await step(result.action)
                trade = await h.channel.query(OrderRef(order.order_no, order.created_at))
                assert trade.state is state, (method, trade)
        barcode = await h.channel.create(_order("barcode", h.auth_code))
        assert barcode.state is TradeState.SUCCEEDED
        await h.set_faults({"outage": True})
        with pytest.raises(ChannelUnavailable):
            await h.channel.create(_order("qr", h.auth_code))
