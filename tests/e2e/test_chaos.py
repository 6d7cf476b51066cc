"""Routers SIGKILLed under load, with the SDK retrying: nothing acknowledged is lost, no
Idempotency-Key stays stuck, no payment stays `processing`, every event is delivered.

Everything is real: `payrouter serve` processes, the WeChat Pay simulator, a webhook receiver
and Redis on loopback. Leases, grace periods and retry waits are set short through the
environment so that the whole run stays within a minute.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from payrouter_sdk import (
    APIConnectionError,
    AsyncClient,
    ChannelError,
    Payment,
    PayrouterError,
    Webhook,
)
from tests.e2e.conftest import (
    Processes,
    Simulator,
    eventually,
    routing_yaml,
    sim_json,
)
from tests.e2e.fleet import LEASE_S, Ledger, create_body, load, new_merchant, sdk, start_fleet
from tests.e2e.test_webhooks import Receiver, start_receiver

pytestmark = pytest.mark.every_topology

KILLS = 8


@pytest.fixture
def config(tmp_path: Path, simulator: Simulator) -> Path:
    path = tmp_path / "routing.yaml"
    path.write_text(routing_yaml(simulator, total_timeout=30))
    return path


@pytest.mark.e2e
@pytest.mark.timeout(120)
async def test_a_retry_after_a_crashed_create_names_the_payment_it_made(
    redis_url: str,
    simulator: Simulator,
    config: Path,
    http: aiohttp.ClientSession,
    serving: list[web.AppRunner],
    processes: Processes,
) -> None:
    """The router dies while the channel is creating the order. The merchant's retry with the
    same key waits out the dead router's lease (told how long by `Retry-After`), then gets an
    answer about that very payment: settled with the channel, closed there, `failed`, and
    named. No second payment, no `duplicate_order`, no `payment.failed` for an unknown id."""
    receiver = await start_receiver(serving)
    fleet = await start_fleet(2, redis_url, config, processes)
    _, secret, _ = await new_merchant(redis_url)
    await sim_json(http, simulator, "PUT", "/sim/faults", {"timeout_rate": 1.0, "only": ["create"]})
    body = create_body("CRASH-1", receiver)
    doomed_client = sdk(fleet.urls[0], secret, max_retries=0)
    doomed = asyncio.create_task(doomed_client.payments.create(**body, idempotency_key="crash-1"))

    async def written() -> str | None:
        async with sdk(fleet.urls[1], secret) as client:
            page = await client.payments.list(merchant_order_id="CRASH-1")
        return page.data[0].id if page.data else None

    pay_id = await eventually(written)

    async def at_the_channel() -> bool | None:
        # Killed only once the order is being created there (the payment is written first).
        _, found = await sim_json(http, simulator, "GET", f"/sim/orders/{pay_id}")
        return True if "order" in found else None

    await eventually(at_the_channel)
    fleet.kill(0)
    with pytest.raises(APIConnectionError):
        await doomed
    await doomed_client.close()
    await sim_json(http, simulator, "PUT", "/sim/faults", {})

    async with sdk(fleet.urls[1], secret, key_in_use_timeout=0) as impatient:
        with pytest.raises(PayrouterError) as early:
            await impatient.payments.create(**body, idempotency_key="crash-1")
    if early.value.code == "idempotency_key_in_use":
        assert 1 <= int(early.value.headers["Retry-After"]) <= LEASE_S
    else:  # the lease ran out while the second router started
        assert early.value.code == "payment_failed"
    async with sdk(fleet.urls[1], secret) as client:
        with pytest.raises(ChannelError) as caught:
            await client.payments.create(**body, idempotency_key="crash-1")
        assert (caught.value.status, caught.value.code) == (402, "payment_failed")
        assert caught.value.payment_id == pay_id
        failed = await client.payments.get(pay_id)
        assert failed.status == "failed"
        page = await client.payments.list(merchant_order_id="CRASH-1")
        assert [p.id for p in page.data] == [pay_id]
        again = await client.payments.create(**body, idempotency_key="crash-1-again")
        assert again.status == "pending"
    _, order = await sim_json(http, simulator, "GET", f"/sim/orders/{pay_id}")
    assert order["order"]["trade_state"] == "CLOSED"


@pytest.mark.e2e
@pytest.mark.timeout(120)
async def test_a_retry_after_a_crashed_refund_is_about_the_same_refund(
    redis_url: str,
    simulator: Simulator,
    config: Path,
    http: aiohttp.ClientSession,
    serving: list[web.AppRunner],
    processes: Processes,
) -> None:
    """The router dies while the channel is taking a refund: the retry with the same key
    answers with that refund; it never refunds the buyer a second time."""
    receiver = await start_receiver(serving)
    fleet = await start_fleet(2, redis_url, config, processes)
    _, secret, _ = await new_merchant(redis_url)
    await sim_json(http, simulator, "PUT", "/sim/faults", {"auto_pay_after_ms": 0})
    async with sdk(fleet.urls[1], secret) as client:
        created = await client.payments.create(**create_body("REFUND-1", receiver))

        async def paid() -> Payment | None:
            found = await client.payments.get(created.id)
            return found if found.status == "succeeded" else None

        await eventually(paid)
    await sim_json(http, simulator, "PUT", "/sim/faults", {"timeout_rate": 1.0, "only": ["refund"]})
    doomed_client = sdk(fleet.urls[0], secret, max_retries=0)
    doomed = asyncio.create_task(
        doomed_client.refunds.create(created.id, amount=40, idempotency_key="refund-1")
    )

    async def written() -> str | None:
        async with sdk(fleet.urls[1], secret) as client:
            page = await client.refunds.list(created.id)
        return page.data[0].id if page.data else None

    re_id = await eventually(written)
    fleet.kill(0)
    with pytest.raises(APIConnectionError):
        await doomed
    await doomed_client.close()
    await sim_json(http, simulator, "PUT", "/sim/faults", {})

    async with sdk(fleet.urls[1], secret) as client:
        again = await client.refunds.create(created.id, amount=40, idempotency_key="refund-1")
        assert (again.id, again.amount) == (re_id, 40)
        listed = await client.refunds.list(created.id)
        assert [r.id for r in listed.data] == [re_id]


@pytest.mark.e2e
@pytest.mark.timeout(150)
async def test_routers_killed_under_load(
    redis_url: str,
    simulator: Simulator,
    config: Path,
    http: aiohttp.ClientSession,
    serving: list[web.AppRunner],
    processes: Processes,
) -> None:
    receiver = await start_receiver(serving)
    # Creates take a while (so kills land mid-create) and every order is paid at once.
    await sim_json(
        http, simulator, "PUT", "/sim/faults", {"latency_ms": 150, "auto_pay_after_ms": 0}
    )
    fleet = await start_fleet(3, redis_url, config, processes)
    _, secret, webhook_secrets = await new_merchant(redis_url)
    ledger = Ledger()
    stop = asyncio.Event()
    clients = [
        sdk(fleet.urls[i % 3], secret, max_retries=8, key_in_use_timeout=30) for i in range(6)
    ]
    loaders = [
        asyncio.create_task(load(c, ledger, receiver, f"w{i}", stop)) for i, c in enumerate(clients)
    ]
    rng = random.Random(9)
    try:
        for round_ in range(KILLS):
            await eventually(partial(_at_least, ledger.acknowledged, 8 * (round_ + 1)), 30)
            victim = rng.randrange(3)
            fleet.kill(victim)
            await fleet.start(victim)
            processes.append(fleet.procs[victim])
    finally:
        stop.set()
        await asyncio.gather(*loaders)
        for c in clients:
            await c.close()

    async with sdk(fleet.urls[0], secret, max_retries=8, key_in_use_timeout=30) as client:
        # Every acknowledged payment can be found, as it was acknowledged.
        for key, pay_id in ledger.acknowledged.items():
            found = await client.payments.get(pay_id)
            assert found.merchant_order_id == ledger.bodies[key]["merchant_order_id"]

        # No key is stuck: each one, retried, gets a final answer, about the payment the
        # merchant was told of before if any; a remembered 201 stays a 201.
        learned: dict[str, str] = {}
        for key, body in ledger.bodies.items():
            status, learned[key] = await final_answer(client, body, key)
            assert status == 201 or (status == 402 and key not in ledger.acknowledged), key
            told = ledger.acknowledged.get(key) or ledger.named.get(key)
            assert told in (None, learned[key]), (key, told, learned[key])

        # Nothing is left processing once the worker's grace period is over.
        async def settled() -> list[Payment] | None:
            everything = [p async for p in client.payments.auto_paging_iter(limit=100)]
            return None if any(p.status == "processing" for p in everything) else everything

        payments = await eventually(settled, timeout=30)
        events = [e async for e in client.events.auto_paging_iter(limit=100)]

    # One payment per key, and the merchant can learn each one through its key: no orphans.
    assert sorted(p.id for p in payments) == sorted(learned.values())

    # Each event arrives (at least once, and is counted once by its webhook-id), verified.
    async def all_delivered() -> set[str] | None:
        got = {headers["webhook-id"] for _, headers, _ in receiver.received}
        return got if {e.id for e in events} <= got else None

    delivered = await eventually(all_delivered, timeout=30)
    assert delivered == {e.id for e in events}
    verify = Webhook(webhook_secrets)
    for _, headers, raw in receiver.received:
        assert verify.verify(raw, headers).id == headers["webhook-id"]
    finals = Counter(json.loads(raw)["data"]["id"] for _, _, raw in _distinct(receiver))
    assert set(finals.values()) <= {1}, "a payment reported final twice"
    assert ledger.acknowledged, ledger.failed
    print(
        f"chaos: {len(ledger.bodies)} creates, {len(ledger.acknowledged)} acknowledged, "
        f"{len(ledger.failed)} errors {Counter(v.split(':')[0] for v in ledger.failed.values())}, "
        f"{len(events)} events, {len(receiver.received)} deliveries"
    )


async def final_answer(client: AsyncClient, body: dict[str, Any], key: str) -> tuple[int, str]:
    """The status of the create with this key and the payment its answer names."""
    try:
        payment = await client.payments.create(**body, idempotency_key=key)
    except ChannelError as exc:
        return exc.status or 0, exc.payment_id or f"(none named: {exc})"
    return 201, payment.id


def _distinct(receiver: Receiver) -> list[tuple[float, dict[str, str], bytes]]:
    seen: dict[str, tuple[float, dict[str, str], bytes]] = {}
    for entry in receiver.received:
        seen.setdefault(entry[1]["webhook-id"], entry)
    return list(seen.values())


async def _at_least(found: dict[str, str], count: int) -> bool | None:
    return True if len(found) >= count else None
