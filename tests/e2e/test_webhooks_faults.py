"""Deliveries that fail in unusual ways still end: recorded attempts, the retry schedule, a
dead letter; the outbox entry is acknowledged. Real router, real receivers, real Redis.

Stored data the API now refuses (a default endpoint that cannot be parsed, a secret sealed
under another key) is written the way older versions or another configuration left it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from router.api.middleware import RUNTIME
from router.app import DISPATCHER
from router.clock import Clock
from router.store import keys, open_store
from router.store.connect import redis_client
from router.store.events import GROUP, MAX_FAULTS
from tests.e2e.conftest import (
    FAST_WEBHOOKS,
    Router,
    Simulator,
    eventually,
    routing_yaml,
    sim_json,
    start_router,
)
from tests.e2e.test_webhooks import Receiver, paid_payment, start_receiver


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    # Any topology (`--redis`): the stores are typed against the one-server client.
    client = cast(aioredis.Redis, redis_client(redis_url))
    yield client
    await client.aclose()


async def new_merchant(
    redis_url: str, *, notify_url: str | None = None, mode: str = "test", key: bytes | None = None
) -> tuple[str, str, str]:
    """A merchant written by a separate store (as the CLI does), before any router reads it."""
    store = await open_store(redis_url, Clock(), key)
    try:
        merchant, issued = await store.merchants.create("Shop", mode=mode)  # type: ignore[arg-type]
        if notify_url is not None:
            # As `merchants create --notify-url` stored it before URLs were checked.
            await store.redis.hset(keys.merchant(merchant.id), "notify_url", notify_url)
    finally:
        await store.close()
    return merchant.id, issued.key.id, issued.secret


async def settled(router: Router, evt_id: str, state: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        status, found, _ = await router.request("GET", f"/v1/events/{evt_id}")
        assert status == 200, found
        return found if found["delivery"]["state"] == state else None

    result: dict[str, Any] = await eventually(check)
    return result


async def only_event(router: Router) -> str:
    async def check() -> str | None:
        _, listed, _ = await router.request("GET", "/v1/events")
        return str(listed["data"][0]["id"]) if listed["data"] else None

    return await eventually(check)


async def outbox_settled(raw: aioredis.Redis, mch: str) -> None:
    """Nothing left in any outbox, nothing pending in any group, and every change copied to
    the record (so a record damaged afterwards is met by readers, not by the drainer)."""
    del mch  # the outboxes are per partition, shared by every merchant

    async def check() -> bool | None:
        for partition in range(keys.PARTITIONS):
            stream = keys.outbox(partition)
            if await raw.exists(stream) and (
                await raw.xlen(stream) or (await raw.xpending(stream, GROUP))["pending"]
            ):
                return None
            if await raw.xlen(keys.changes(partition)):
                return None
        return True

    await eventually(check)


@pytest.fixture
async def receiver(serving: list[web.AppRunner]) -> Receiver:
    return await start_receiver(serving)


async def metric(http: aiohttp.ClientSession, router: Router, sample: str) -> float:
    async with http.get(f"{router.url}/metrics") as resp:
        for line in (await resp.text()).splitlines():
            name, _, value = line.rpartition(" ")
            if name == sample:
                return float(value)
    return 0.0


async def pay(router: Router, simulator: Simulator, http: aiohttp.ClientSession) -> None:
    status, created = await router.create()
    assert status == 201, created
    await sim_json(
        http, simulator, "POST", "/sim/buyer/pay", {"code": created["action"]["qr_code"]}
    )


async def test_unparsable_default_endpoint_is_attempted_until_dead(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
    raw: aioredis.Redis,
) -> None:
    merchant = await new_merchant(redis_url, notify_url="http://[/hook")
    router = await start_router(redis_url, simulator, tmp_path, serving, http, merchant=merchant)
    await pay(router, simulator, http)
    shown = await settled(router, await only_event(router), "dead")
    attempts = shown["delivery"]["attempts"]
    assert len(attempts) == len(FAST_WEBHOOKS)
    for attempt in attempts:
        assert attempt["status"] is None
        assert "is not a valid URL" in attempt["error"]
        assert attempt["url"] == "http://[/hook"
    await outbox_settled(raw, router.merchant_id)
    outcome = 'payrouter_webhook_deliveries_total{outcome="bad_url"}'
    assert await metric(http, router, outcome) == len(FAST_WEBHOOKS) - 1
    assert await metric(http, router, 'payrouter_webhook_deliveries_total{outcome="dead"}') == 1


async def test_unicode_digit_retry_after_is_an_ordinary_failure(
    router: Router,
    simulator: Simulator,
    http: aiohttp.ClientSession,
    receiver: Receiver,
    raw: aioredis.Redis,
) -> None:
    receiver.script = [(503, {"Retry-After": "\u00b2"}), (503, {"Retry-After": "1e3"})]
    await paid_payment(router, simulator, http, receiver.url)
    shown = await settled(router, await only_event(router), "delivered")
    assert [a["status"] for a in shown["delivery"]["attempts"]] == [503, 503, 200]
    await outbox_settled(raw, router.merchant_id)


async def test_secret_sealed_under_another_key_is_attempted_until_dead(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
    receiver: Receiver,
    raw: aioredis.Redis,
) -> None:
    merchant = await new_merchant(redis_url, key=os.urandom(32))
    # A store from before start-up checked the key had no check value: the router starts, and
    # this merchant's secret cannot be opened with its key.
    await raw.delete(keys.secret_key_check())
    router = await start_router(redis_url, simulator, tmp_path, serving, http, merchant=merchant)
    await paid_payment(router, simulator, http, receiver.url)
    shown = await settled(router, await only_event(router), "dead")
    attempts = shown["delivery"]["attempts"]
    assert len(attempts) == len(FAST_WEBHOOKS)
    for attempt in attempts:
        assert "cannot be decrypted" in attempt["error"]
        assert "whsec_" not in attempt["error"]
    assert receiver.received == []
    await outbox_settled(raw, router.merchant_id)
    outcome = 'payrouter_webhook_deliveries_total{outcome="bad_secret"}'
    assert await metric(http, router, outcome) == len(FAST_WEBHOOKS) - 1


class Listener:
    """A TCP port that counts connections (and says nothing)."""

    def __init__(self) -> None:
        self.connections = 0

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()


@pytest.mark.parametrize(
    ("host", "target"),
    [
        ("127.0.0.1", "https://127.0.0.1:{port}/hooks"),
        ("::1", "https://[::1]:{port}/hooks"),
        ("100.64.0.1", "https://100.64.0.1/hooks"),
    ],
)
async def test_live_ip_literal_targets_are_never_contacted(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
    raw: aioredis.Redis,
    host: str,
    target: str,
) -> None:
    listener = Listener()
    server = await asyncio.start_server(listener.accept, "::1" if host == "::1" else "127.0.0.1")
    try:
        url = target.format(port=server.sockets[0].getsockname()[1])
        live = routing_yaml(simulator).replace(
            "    type: wechat\n", "    type: wechat\n    livemode: true\n"
        )
        merchant = await new_merchant(redis_url, notify_url=url, mode="live")
        router = await start_router(
            redis_url,
            simulator,
            tmp_path,
            serving,
            http,
            merchant=merchant,
            config_text=live,
        )
        await pay(router, simulator, http)
        shown = await settled(router, await only_event(router), "dead")
    finally:
        server.close()
        await server.wait_closed()
    for attempt in shown["delivery"]["attempts"]:
        assert attempt["error"] == f"refused in live mode: {host} is not a public address"
    assert listener.connections == 0
    await outbox_settled(raw, router.merchant_id)
    outcome = 'payrouter_webhook_deliveries_total{outcome="unsafe"}'
    assert await metric(http, router, outcome) == len(FAST_WEBHOOKS) - 1


async def test_an_event_that_cannot_be_recorded_is_abandoned_not_retaken_forever(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
    receiver: Receiver,
    raw: aioredis.Redis,
) -> None:
    router = await start_router(
        redis_url, simulator, tmp_path, serving, http, overrides={"webhook_claim_idle_s": 0.2}
    )
    await paid_payment(router, simulator, http, receiver.url)
    mch = router.merchant_id
    evt_id = await only_event(router)
    await settled(router, evt_id, "delivered")
    # Its attempts can no longer be written (a corrupt record): every try fails after sending.
    await raw.delete(keys.event_attempts(evt_id))
    await raw.set(keys.event_attempts(evt_id), "not a list")
    events = router.app[RUNTIME].store.events
    event = await events.get(mch, evt_id)
    assert event is not None
    await events.resend(event)

    async def abandoned() -> bool | None:
        event = await events.get(mch, evt_id)
        assert event is not None
        return True if event.state == "dead" and evt_id in await events.dead(mch) else None

    await eventually(abandoned)
    await outbox_settled(raw, mch)
    assert await raw.hget(keys.webhook_faults(keys.partition_of(evt_id)), evt_id) is None
    assert len(receiver.received) >= MAX_FAULTS
    assert (
        await metric(http, router, 'payrouter_webhook_deliveries_total{outcome="abandoned"}') == 1
    )


async def test_an_outbox_stream_that_vanished_is_recreated(
    router: Router,
    simulator: Simulator,
    http: aiohttp.ClientSession,
    receiver: Receiver,
    raw: aioredis.Redis,
) -> None:
    await paid_payment(router, simulator, http, receiver.url)
    await eventually(lambda: _received(receiver, 1))
    # Lost with its consumer group (flushed, restored from an older dump): every read of the
    # merchants' streams fails with NOGROUP until the group exists again.
    await raw.delete(*(keys.outbox(p) for p in range(keys.PARTITIONS)))
    await paid_payment(router, simulator, http, receiver.url)
    await eventually(lambda: _received(receiver, 2))


async def _received(receiver: Receiver, n: int) -> bool | None:
    return True if len(receiver.received) >= n else None


async def test_a_retry_a_dead_process_took_is_sent_after_one_delivery_time(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
    receiver: Receiver,
) -> None:
    """The retry lease is one delivery's timeout and 5 s (2 + 5 here), not a minute."""
    router = await start_router(
        redis_url, simulator, tmp_path, serving, http, overrides={"webhook_schedule": (0, 60)}
    )
    dispatcher = router.app[DISPATCHER]
    assert dispatcher.retry_lease_s() == 2.0 + 5.0
    receiver.script = [(500, {})]
    await paid_payment(router, simulator, http, receiver.url)
    evt_id = await only_event(router)
    await settled(router, evt_id, "retrying")
    # Another process takes the retry when it is due (60 s, jittered by 10%), and dies
    # before sending it.
    events = router.app[RUNTIME].store.events
    due_ms = router.clock.now_ms() + 67_000
    lease_ms = int(dispatcher.retry_lease_s() * 1000)
    assert await events.claim_retries(due_ms, lease_ms, 10) == [(router.merchant_id, evt_id)]
    router.clock.advance(67 + dispatcher.retry_lease_s() + 0.1)
    await settled(router, evt_id, "delivered")
    assert len(receiver.received) == 2
