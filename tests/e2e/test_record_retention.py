"""Retention end to end: after PAYROUTER_REDIS_RETENTION, Redis holds none of a paid and
refunded payment's objects, and every API answer about them is byte for byte the same, read
from the record; an old payment can still be refunded, and its merchant_order_id stays used."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web
from sqlalchemy import select

from router.api.middleware import RUNTIME
from router.app import DRAINER, RECORD
from router.payments import recorded
from router.record import Record
from router.record.connect import create_engine, engine_url
from router.record.schema import channel_notifications
from tests.conftest import loopback_socket
from tests.e2e.conftest import Router, Simulator, eventually, start_router
from tests.e2e.test_webhooks import paid_payment, start_receiver

RETENTION_S = 60.0
"""Short enough that the clock moved past it still signs within the simulator's window."""


async def raw(r: Router, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
    """An answer's status and exact bytes."""
    async with r.http.request(method, r.url + path, json=body, headers=r.auth) as resp:
        return resp.status, await resp.read()


async def objects_in_redis(redis_url: str) -> dict[str, int]:
    """How many payment, refund and event hashes (and attempt lists) Redis holds."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        return {
            kind: len([k async for k in client.scan_iter(match=f"pr:*:{kind}:*")])
            for kind in ("pay", "refund", "evt")
        }
    finally:
        await client.aclose()


async def test_after_the_retention_every_answer_comes_the_same_from_the_record(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    receiver = await start_receiver(serving)
    r = await start_router(
        redis_url,
        simulator,
        tmp_path,
        serving,
        http,
        run_worker=True,
        overrides={"redis_retention_s": RETENTION_S},
    )
    drainer = r.app[DRAINER]
    drainer.retire_s = 0.1
    paid = await paid_payment(r, simulator, http, receiver.url)
    pay_id = paid["id"]
    status, refund, _ = await r.request(
        "POST", f"/v1/payments/{pay_id}/refunds", json={"amount": 500, "merchant_refund_id": "R1"}
    )
    assert status == 201, refund

    async def settled() -> bool | None:
        _, found, _ = await r.request("GET", f"/v1/refunds/{refund['id']}")
        return True if found["status"] == "succeeded" else None

    await eventually(settled, timeout=30)
    _, listed, _ = await r.request("GET", "/v1/events?limit=100")
    event_ids = [e["id"] for e in listed["data"]]
    assert len(event_ids) == 2

    async def delivered() -> bool | None:
        for evt_id in event_ids:
            _, found, _ = await r.request("GET", f"/v1/events/{evt_id}")
            if found["delivery"]["state"] != "delivered":
                return None
        return True

    await eventually(delivered, timeout=30)
    store = r.app[RUNTIME].store

    async def recorded() -> bool | None:
        drained = await store.changes.reader.length() == 0
        # The payment may be scheduled twice: at succeeded, and once its refund settled.
        return True if drained and await store.changes.scheduled() >= 4 else None

    await eventually(recorded, timeout=30)
    paths = [
        f"/v1/payments/{pay_id}",
        f"/v1/refunds/{refund['id']}",
        f"/v1/payments/{pay_id}/refunds",
        f"/v1/payments/{pay_id}/refunds?limit=1",
        *(f"/v1/events/{evt_id}" for evt_id in event_ids),
        # Lists: from Redis and the record before, from the record alone after.
        f"/v1/payments?merchant_order_id={paid['merchant_order_id']}",
        "/v1/payments?limit=5",
        f"/v1/payments?status=succeeded&method={paid['method']}&amount_gte={paid['amount']}",
        "/v1/events?limit=100",
        "/v1/events?type=refund.succeeded",
        f"/v1/events?limit=1&starting_after={event_ids[0]}",
    ]
    before = [await raw(r, "GET", path) for path in paths]
    closed_before = await raw(r, "POST", f"/v1/payments/{pay_id}/close")
    assert [status for status, _ in before] == [200] * len(paths)
    assert (await objects_in_redis(redis_url))["pay"] >= 1

    r.clock.advance(RETENTION_S + 1)

    async def retired() -> dict[str, int] | None:
        left = await objects_in_redis(redis_url)
        return left if not any(left.values()) else None

    await eventually(retired, timeout=30)
    assert [await raw(r, "GET", path) for path in paths] == before
    assert await raw(r, "POST", f"/v1/payments/{pay_id}/close") == closed_before
    metrics = r.app[RUNTIME].metrics
    assert metrics.record_retired.labels("pay")._value.get() == 1

    # An event that left Redis can be resent: put back, with its attempts, and delivered.
    first_event = json.loads(before[4][1])
    delivered_before = len(receiver.received)
    status, resent, _ = await r.request("POST", f"/v1/events/{event_ids[0]}/resend")
    assert status == 200, resent
    assert resent["delivery"]["attempts"][:1] == first_event["delivery"]["attempts"]

    async def redelivered() -> bool | None:
        return True if len(receiver.received) > delivered_before else None

    await eventually(redelivered, timeout=30)
    assert json.loads(receiver.received[-1][2])["id"] == event_ids[0]

    # The retired refund's merchant_refund_id still names it; the rest can be refunded.
    again = await raw(
        r, "POST", f"/v1/payments/{pay_id}/refunds", {"amount": 500, "merchant_refund_id": "R1"}
    )
    assert again == (200, before[1][1])
    status, second, _ = await r.request(
        "POST", f"/v1/payments/{pay_id}/refunds", json={"merchant_refund_id": "R2"}
    )
    assert status == 201, second
    assert second["amount"] == paid["amount"] - 500

    async def refunded() -> dict[str, Any] | None:
        found = await r.payment(pay_id)
        return found if found["amount_refunded"] == paid["amount"] else None

    await eventually(refunded, timeout=30)
    _, listed_refunds, _ = await r.request("GET", f"/v1/payments/{pay_id}/refunds")
    assert [x["id"] for x in listed_refunds["data"]] == [second["id"], refund["id"]]

    # The channel's callbacks reached the record as received, for audit.
    async with r.app[RECORD].engine.connect() as conn:
        audited = (
            await conn.execute(
                select(channel_notifications.c.outcome, channel_notifications.c.body).where(
                    channel_notifications.c.payment_id == pay_id
                )
            )
        ).all()
    assert "accepted" in {outcome for outcome, _ in audited}
    assert all(body for _, body in audited)

    # Its merchant_order_id is still used, though its order left Redis with it.
    status, duplicate = await r.create(merchant_order_id=paid["merchant_order_id"])
    assert status == 409, duplicate
    assert duplicate["error"]["code"] == "duplicate_order"
    assert duplicate["error"]["payment_id"] == pay_id


async def test_an_unanswering_record_pauses_order_checks_for_its_router_only(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    """A create asks the record about its merchant_order_id; a record that does not answer
    is skipped (counted) for a while by that router, and never by another one."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = await start_router(redis_url, simulator, tmp_path / "a", serving, http)
    second = await start_router(redis_url, simulator, tmp_path / "b", serving, http)
    rt = first.app[RUNTIME]
    with loopback_socket() as closed:
        url = engine_url(f"postgresql://u@127.0.0.1:{closed.getsockname()[1]}/x", Path())
    working, rt.record = rt.record, Record(create_engine(url), "nowhere", embedded=False)
    try:
        assert await recorded.order_holder(rt, first.merchant_id, "O-1") is None
        assert await recorded.order_holder(rt, first.merchant_id, "O-2") is None
        assert rt.metrics.record_unchecked_orders._value.get() == 2
        assert rt.order_checks_paused_until > rt.clock.monotonic()
        other = second.app[RUNTIME]
        assert other.order_checks_paused_until == 0.0
        assert await recorded.order_holder(other, second.merchant_id, "O-3") is None
        assert other.metrics.record_unchecked_orders._value.get() == 0
    finally:
        await rt.record.close()
        rt.record = working
