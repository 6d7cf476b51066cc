"""Every channel's statement, downloaded, verified and parsed against its running simulator.

The same tests for every registered channel (through the contract suite's harnesses): real
payments and refunds through the adapter, then what the simulator's control plane injects
(`/sim/statement/...`: a coupon, a portal refund, an order made without the router, payments
either side of midnight China time, a fee rate) must show in the parsed lines.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from channels.base import RefundState, StatementLine
from channels.sim.statements import fee
from channels.statement import CHINA_TIME
from channels.unionpay.protocol.wire import to_order_id
from tests.channels.harness import Harness, HarnessFactory
from tests.channels.test_contract import HARNESSES, new_order, refund_of


@pytest.fixture(params=list(HARNESSES))
async def h(
    request: pytest.FixtureRequest, tmp_path: Path, http_session: aiohttp.ClientSession
) -> AsyncIterator[Harness]:
    factory: HarnessFactory = importlib.import_module(HARNESSES[request.param]).harness
    async with factory(tmp_path, http_session) as harness:
        await harness.set_faults({"refund_delay_ms": 0})
        yield harness


def today() -> date:
    return datetime.now(CHINA_TIME).date()


async def lines_of(h: Harness, day: date) -> list[StatementLine]:
    return [line async for line in h.channel.statement(day)]


async def control(
    session: aiohttp.ClientSession, h: Harness, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    method = "PUT" if path == "fee_rate" else "POST"
    async with session.request(method, f"{h.sim_url}/sim/statement/{path}", json=body) as r:
        data: dict[str, Any] = await r.json()
        assert r.status == 200, data
        return data


async def paid_order(h: Harness, amount: int) -> str:
    """A payment made through the adapter and paid by the buyer; its channel order number."""
    order = new_order(h, amount=amount)
    created = await h.channel.create(order)
    await h.pay(created.action)
    return order.order_no


def held(h: Harness, order_no: str) -> str:
    """The order number as the channel holds it (UnionPay's orderId differs from ours)."""
    return to_order_id(order_no) if h.name == "unionpay" else order_no


async def test_a_day_of_payments_and_refunds_is_listed_with_fees(h: Harness) -> None:
    first = new_order(h, amount=1999)
    second = new_order(h, amount=500)
    for order in (first, second):
        await h.pay((await h.channel.create(order)).action)
    refund = refund_of(first, 700)
    status = await h.channel.refund(refund)
    while status.state is RefundState.PENDING:
        status = await h.channel.query_refund(refund)
    assert status.state is RefundState.SUCCEEDED

    lines = await lines_of(h, today())

    payments = {line.order_no: line for line in lines if line.kind == "payment"}
    assert payments[first.order_no].amount == 1999
    assert payments[first.order_no].settled == 1999
    assert payments[first.order_no].fee == fee(1999, 60)
    assert payments[second.order_no].amount == 500
    assert payments[first.order_no].channel_trade_no
    (back,) = [line for line in lines if line.kind == "refund"]
    assert (back.order_no, back.refund_no, back.amount, back.settled) == (
        first.order_no,
        refund.refund_no,
        700,
        700,
    )
    assert back.fee == -fee(700, 60)
    assert all(line.currency == "CNY" and line.status == "succeeded" for line in lines)
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    assert all(now_ms - 600_000 < line.time <= now_ms + 1000 for line in lines)


async def test_a_day_without_lines_is_an_empty_statement(h: Harness) -> None:
    assert await lines_of(h, today() - timedelta(days=3)) == []


async def test_injected_cases_show_in_the_statement(
    h: Harness, http_session: aiohttp.ClientSession
) -> None:
    await control(http_session, h, "fee_rate", {"rate_bp": 38})
    couponed = await paid_order(h, 10_000)
    refunded = await paid_order(h, 3_000)
    early = await paid_order(h, 1_200)
    late = await paid_order(h, 1_300)
    day = today()
    start = datetime.combine(day, time(0, 0, 0, 500_000), CHINA_TIME)

    async def inject(path: str, **body: Any) -> dict[str, Any]:
        return await control(http_session, h, path, body)

    await inject("coupon", order_no=held(h, couponed), amount=800)
    portal = await inject("portal_refund", order_no=held(h, refunded), amount=1_000)
    outside = await inject("outside_order", amount=4_200)
    await inject("paid_at", order_no=held(h, early), paid_at=start.isoformat())
    await inject(
        "paid_at",
        order_no=held(h, late),
        paid_at=(start - timedelta(seconds=1)).isoformat(),
    )

    lines = await lines_of(h, day)
    payments = {line.order_no: line for line in lines if line.kind == "payment"}
    assert (payments[couponed].amount, payments[couponed].settled) == (10_000, 9_200)
    assert payments[couponed].discount == 800
    assert payments[couponed].fee == fee(9_200, 38)
    (portal_line,) = [line for line in lines if line.kind == "refund"]
    assert portal_line.order_no == refunded
    assert portal_line.refund_no == portal["refund_no"]
    assert portal_line.amount == 1_000
    assert payments[outside["order_no"]].amount == 4_200
    assert payments[outside["order_no"]].channel_trade_no == outside["channel_trade_no"]
    assert payments[early].time == int(start.timestamp()) * 1000
    assert late not in payments
    yesterday = {line.order_no for line in await lines_of(h, day - timedelta(days=1))}
    assert late in yesterday
    assert early not in yesterday


async def test_the_control_plane_names_a_bad_field(
    h: Harness, http_session: aiohttp.ClientSession
) -> None:
    url = f"{h.sim_url}/sim/statement/coupon"
    async with http_session.post(url, json={"order_no": "nosuchorder1", "amount": 1}) as r:
        assert r.status == 404
        assert (await r.json())["error"]["field"] == "order_no"
    async with http_session.post(
        f"{h.sim_url}/sim/statement/outside_order", json={"amount": 1.5}
    ) as r:
        assert r.status == 400
        assert (await r.json())["error"]["field"] == "amount"
