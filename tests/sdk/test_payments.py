"""Payments and refunds through the SDK, against a live router and WeChat Pay simulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from payrouter_sdk import (
    AsyncClient,
    InvalidRequestError,
    NotFoundError,
    Payment,
    Refund,
)
from tests.e2e.conftest import Simulator, eventually
from tests.sdk.conftest import create_qr, order_id, pay_at_simulator


async def test_create_returns_a_typed_payment(client: AsyncClient) -> None:
    payment = await create_qr(client, metadata={"cart": "c-1"})
    assert isinstance(payment, Payment)
    assert payment.id.startswith("pay_")
    assert (payment.amount, payment.currency, payment.status) == (1999, "CNY", "pending")
    assert payment.action is not None and payment.action.type == "qr_code"
    assert payment.action.qr_code and payment.action.qr_code.startswith("weixin://")
    assert payment.metadata == {"cart": "c-1"}
    assert payment.routing is not None and payment.routing.attempts[0].outcome == "created"


async def test_same_idempotency_key_returns_the_same_payment(client: AsyncClient) -> None:
    order = order_id()

    async def checkout() -> Payment:
        return await client.payments.create(
            amount=500,
            merchant_order_id=order,
            description="Tea",
            method="qr",
            idempotency_key=f"order-{order}",
        )

    first = await checkout()
    again = await checkout()
    assert again == first


async def test_each_call_gets_its_own_key(client: AsyncClient) -> None:
    """Without an explicit key, a second create is a new request: the order id is taken."""
    order = order_id()
    first = await client.payments.create(
        amount=500, merchant_order_id=order, description="Tea", method="qr"
    )
    with pytest.raises(InvalidRequestError) as caught:
        await client.payments.create(
            amount=500, merchant_order_id=order, description="Tea", method="qr"
        )
    assert (caught.value.status, caught.value.code) == (409, "duplicate_order")
    assert first.id in caught.value.message


async def test_get(client: AsyncClient) -> None:
    created = await create_qr(client)
    found = await client.payments.get(created.id)
    assert (found.id, found.merchant_order_id) == (created.id, created.merchant_order_id)
    with pytest.raises(NotFoundError) as caught:
        await client.payments.get("pay_doesnotexist000")
    assert (caught.value.status, caught.value.param) == (404, "id")


async def test_list_and_auto_pagination(client: AsyncClient) -> None:
    created = [await create_qr(client, amount=100 + i) for i in range(5)]
    newest_first = [p.id for p in reversed(created)]
    page = await client.payments.list(limit=2)
    assert [p.id for p in page.data] == newest_first[:2]
    assert page.has_more
    nxt = await client.payments.list(limit=2, starting_after=page.data[-1].id)
    assert [p.id for p in nxt.data] == newest_first[2:4]
    walked = [p.id async for p in client.payments.auto_paging_iter(limit=2)]
    assert walked == newest_first
    since = datetime.now(UTC) - timedelta(minutes=5)
    filtered = client.payments.auto_paging_iter(status="pending", created_gte=since, limit=3)
    assert [p.id async for p in filtered] == newest_first
    one = await client.payments.list(merchant_order_id=created[2].merchant_order_id)
    assert [p.id for p in one.data] == [created[2].id]
    assert not one.has_more


async def test_close(client: AsyncClient) -> None:
    created = await create_qr(client)
    closed = await client.payments.close(created.id)
    assert closed.status == "closed"
    assert (await client.payments.get(created.id)).status == "closed"


async def test_paid_then_refunded_in_part_and_in_full(
    client: AsyncClient, simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    paid = await pay_at_simulator(client, simulator, http, await create_qr(client))
    assert paid.paid_at is not None and paid.channel_trade_no
    part = await client.refunds.create(paid.id, amount=500, reason="damaged")
    assert isinstance(part, Refund)
    assert (part.payment, part.amount, part.reason) == (paid.id, 500, "damaged")
    rest = await client.refunds.create(paid.id, merchant_refund_id=f"R-{paid.id}")
    assert rest.amount == 1999 - 500
    again = await client.refunds.create(paid.id, merchant_refund_id=f"R-{paid.id}")
    assert again.id == rest.id

    async def settled() -> list[Refund] | None:
        found = [await client.refunds.get(r.id) for r in (part, rest)]
        return found if all(r.status == "succeeded" for r in found) else None

    done = await eventually(settled)
    assert all(r.succeeded_at for r in done)
    listed = await client.refunds.list(paid.id)
    assert {r.id for r in listed.data} == {part.id, rest.id}
    assert [r.id async for r in client.refunds.auto_paging_iter(paid.id, limit=1)] == [
        r.id for r in listed.data
    ]
    assert (await client.payments.get(paid.id)).amount_refunded == 1999
    with pytest.raises(InvalidRequestError) as caught:
        await client.refunds.create(paid.id, amount=1)
    assert (caught.value.code, caught.value.param) == ("refund_exceeds_payment", "amount")


async def test_naive_datetimes_are_refused(client: AsyncClient) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await client.payments.list(created_gte=datetime(2025, 1, 1))
