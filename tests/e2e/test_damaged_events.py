"""Event records damaged in Redis (a field missing, `data` that is not JSON, a key of another
type, attempt rows that are not attempts) never make a read answer 500: lists leave them out,
a single read is 404, what can be read is shown, and each is counted and logged once.
Real router, real receiver, real Redis, records damaged by hand."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from router.store import keys
from router.store.connect import redis_client
from tests.e2e.conftest import ADMIN_TOKEN, Router, Simulator, eventually, start_router
from tests.e2e.test_webhooks import Receiver, paid_payment, start_receiver
from tests.e2e.test_webhooks_faults import metric, only_event, outbox_settled

pytestmark = pytest.mark.every_topology


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    # Any topology (`--redis`): the stores are typed against the one-server client.
    client = cast(aioredis.Redis, redis_client(redis_url))
    yield client
    await client.aclose()


@pytest.fixture
async def receiver(serving: list[web.AppRunner]) -> Receiver:
    return await start_receiver(serving)


async def dead_letters(http: aiohttp.ClientSession, router: Router) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with http.get(f"{router.url}/admin/webhooks/dead", headers=headers) as resp:
        return resp.status, await resp.json()


async def dead_events(
    router: Router, simulator: Simulator, http: aiohttp.ClientSession, receiver: Receiver, n: int
) -> list[str]:
    """`n` events that became dead letters (their endpoint answers 500 to every attempt)."""
    receiver.script = [(500, {})] * 100
    for _ in range(n):
        await paid_payment(router, simulator, http, receiver.url)

    async def all_dead() -> list[str] | None:
        status, body = await dead_letters(http, router)
        assert status == 200, body
        ids = [row["id"] for row in body["data"]]
        return ids if len(ids) == n else None

    return await eventually(all_dead)


async def test_damaged_event_records_are_left_out_not_a_500(
    router: Router,
    simulator: Simulator,
    http: aiohttp.ClientSession,
    receiver: Receiver,
    raw: aioredis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    no_type, bad_data, not_a_hash, bad_rows = await dead_events(
        router, simulator, http, receiver, 4
    )
    mch = router.merchant_id
    await outbox_settled(raw, mch)
    await raw.hdel(keys.event(no_type), "type")
    await raw.hset(keys.event(bad_data), "data", '{"id": "pay_')
    await raw.delete(keys.event(not_a_hash))
    await raw.set(keys.event(not_a_hash), "not a hash")
    await raw.rpush(keys.event_attempts(bad_rows), "not JSON", '{"status": "x"}')

    for _ in range(2):  # read twice: each damaged record is still reported once
        status, body = await dead_letters(http, router)
        assert status == 200, body
        assert [row["id"] for row in body["data"]] == [bad_rows]
        assert body["data"][0]["last"]["status"] == 500
        status, listed, _ = await router.request("GET", "/v1/events")
        assert status == 200, listed
        assert [e["id"] for e in listed["data"]] == [bad_rows]
        for damaged in (no_type, bad_data, not_a_hash):
            for method, path in [
                ("GET", f"/v1/events/{damaged}"),
                ("POST", f"/v1/events/{damaged}/resend"),
                ("GET", f"/v1/events?starting_after={damaged}"),
            ]:
                status, err, _ = await router.request(method, path)
                assert status in (400, 404), (path, err)
                assert err["error"]["code"] == "resource_missing"
        status, shown, _ = await router.request("GET", f"/v1/events/{bad_rows}")
        assert status == 200, shown
        assert [a["status"] for a in shown["delivery"]["attempts"]] == [500] * 4

    event_metric = 'payrouter_store_unreadable_records_total{record="event"}'
    assert await metric(http, router, event_metric) == 3
    attempt_metric = 'payrouter_store_unreadable_records_total{record="event_attempt"}'
    assert await metric(http, router, attempt_metric) == 2
    lines = [r for r in caplog.records if r.name == "payrouter.store"]
    assert len(lines) == 5, [r.getMessage() for r in lines]
    assert "field 'type' is missing" in lines[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_a_damaged_event_waiting_for_a_retry_becomes_a_dead_letter_at_once(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
    receiver: Receiver,
    raw: aioredis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The dispatcher cannot deliver what it cannot read: at once a dead letter that names
    why, not five tries with a traceback each."""
    router = await start_router(
        redis_url, simulator, tmp_path, serving, http, overrides={"webhook_schedule": (0, 60)}
    )
    receiver.script = [(500, {})]
    await paid_payment(router, simulator, http, receiver.url)
    mch = router.merchant_id
    evt_id = await only_event(router)

    async def state(wanted: str) -> bool | None:
        return True if await raw.hget(keys.event(evt_id), "state") == wanted else None

    await eventually(lambda: state("retrying"))
    await raw.hset(keys.event(evt_id), "data", "{not JSON")
    router.clock.advance(61)  # the retry is due
    await eventually(lambda: state("dead"))
    assert await raw.zscore(keys.dead_letters(keys.partition_of(evt_id), mch), evt_id) is not None
    assert (
        await raw.zscore(keys.webhook_retries(keys.partition_of(evt_id)), f"{mch}/{evt_id}") is None
    )
    row = await raw.lindex(keys.event_attempts(evt_id), -1)
    assert row is not None
    last = json.loads(row)
    assert last["error"] == "its record cannot be read: field 'data' is not JSON"
    assert len(receiver.received) == 1
    abandoned = 'payrouter_webhook_deliveries_total{outcome="abandoned"}'
    assert await metric(http, router, abandoned) == 1
    assert (
        await metric(http, router, 'payrouter_store_unreadable_records_total{record="event"}') == 1
    )
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
