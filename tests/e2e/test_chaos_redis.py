"""A Redis primary SIGKILLed under load, on a Redis Cluster and under Sentinel: the replica
takes over, the routers (never restarted) go on by themselves, the outage is answered with
`503 store_unavailable` and `Retry-After`, and every acknowledged payment is found afterwards
or counted as lost (with `PAYROUTER_REDIS_WAIT_REPLICAS=1`, only writes the router itself
counted as unreplicated may be).

Everything is real: `payrouter serve` processes, the WeChat Pay simulator, the session's
cluster or Sentinel set-up on loopback, SDK clients. The clients are told not to retry by
themselves (`max_retries=0`) so that every answer of the outage is seen and recorded; they
retry with the same Idempotency-Key, as a merchant would.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.harness.topologies import RedisClusterSetup, RedisSentinelSetup
from payrouter_sdk import APIConnectionError, AsyncClient, NotFoundError, PayrouterError
from tests.e2e.conftest import (
    Processes,
    Simulator,
    eventually,
    routing_yaml,
    sim_json,
)
from tests.e2e.fleet import Fleet, Ledger, create_body, new_merchant, sdk, start_fleet
from tests.e2e.test_webhooks import Receiver, start_receiver

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]

ROUTERS = 2
CLIENTS = 4
BEFORE = 40
"""Creates acknowledged before the primary is killed."""
AFTER = 40
"""Creates acknowledged after the kill: they show that the routers went on by themselves."""
RETRY_S = 0.1
"""A client's pause before it sends a create again after a 503 or a refused connection."""
REFUND = 10


RETRIED = "503 store_unavailable"
"""The one answer of an outage: a client sends the same request again (same key)."""
SETTLED = "402 payment_failed"
"""The answer to a retry whose earlier attempt was cut short by the outage after the channel
had the order: that attempt's payment, settled with the channel (`router.payments.stranded`)."""


@dataclass
class Run:
    """Everything the clients were told, in order."""

    ledger: Ledger = field(default_factory=Ledger)
    order: list[str] = field(default_factory=list)
    """Keys in the order their 201 arrived."""
    refunds: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Refund Idempotency-Key -> (payment id, refund id) of its 201."""
    answers: dict[str, list[str]] = field(default_factory=dict)
    """Idempotency-Key -> its error answers (`"503 store_unavailable"` and the like)."""
    no_retry_after: int = 0
    """503 answers without a `Retry-After`."""
    slowest: float = 0.0
    """The longest an error answer took, in seconds (printed, not asserted)."""

    def saw(self, key: str, exc: PayrouterError) -> bool:
        """Record an error answer; True when the same request should be sent again."""
        answer = f"{exc.status} {exc.code}"
        if isinstance(exc, APIConnectionError):
            answer = type(exc).__name__
        self.answers.setdefault(key, []).append(answer)
        if exc.status == 503 and "Retry-After" not in exc.headers:
            self.no_retry_after += 1
        if answer == RETRIED:
            return True
        self.ledger.failed[key] = answer
        payment_id = getattr(exc, "payment_id", None)
        if payment_id:
            self.ledger.named[key] = payment_id
        return False

    def counts(self) -> Counter[str]:
        """How many times each error answer was given."""
        return Counter(answer for answers in self.answers.values() for answer in answers)


async def answered(
    run: Run, key: str, stop: asyncio.Event, call: Callable[[], Awaitable[str]]
) -> str | None:
    """`call` sent again (same key) while the store is unavailable; None once `stop` is set
    without an answer, or for an error answer that is final."""
    while True:
        started = time.monotonic()
        try:
            return await call()
        except PayrouterError as exc:
            run.slowest = max(run.slowest, time.monotonic() - started)
            if not run.saw(key, exc) or stop.is_set():
                return None
        await asyncio.sleep(RETRY_S)


async def create_payments(
    client: AsyncClient, run: Run, receiver: Receiver, name: str, stop: asyncio.Event
) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        key = f"{name}-{n}"
        body = run.ledger.bodies[key] = create_body(f"O-{key}", receiver)

        async def create(body: dict[str, object] = body, key: str = key) -> str:
            return (await client.payments.create(**body, idempotency_key=key)).id  # type: ignore[arg-type]

        pay_id = await answered(run, key, stop, create)
        if pay_id is not None:
            run.ledger.acknowledged[key] = pay_id
            run.order.append(key)


async def refund_some(client: AsyncClient, run: Run, stop: asyncio.Event) -> None:
    """Refund part of paid payments, one after the other, while the creates go on."""
    tried: set[str] = set()
    while not stop.is_set():
        fresh = [p for p in run.ledger.acknowledged.values() if p not in tried]
        if not fresh:
            await asyncio.sleep(RETRY_S)
            continue
        pay_id = fresh[-1]
        tried.add(pay_id)

        key = f"refund-{pay_id}"

        async def refund(pay_id: str = pay_id, key: str = key) -> str:
            if (await client.payments.get(pay_id)).status != "succeeded":
                return ""
            return (await client.refunds.create(pay_id, amount=REFUND, idempotency_key=key)).id

        re_id = await answered(run, key, stop, refund)
        if re_id:
            run.refunds[key] = (pay_id, re_id)


async def unreplicated(fleet: Fleet, http: aiohttp.ClientSession) -> int:
    """`payrouter_redis_unreplicated_writes_total` summed over the fleet, every write kind."""
    total = 0.0
    for url in fleet.urls:
        async with http.get(f"{url}/metrics") as resp:
            text = await resp.text()
        for family in text_string_to_metric_families(text):
            if family.name == "payrouter_redis_unreplicated_writes":
                total += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return int(total)


async def failover_under_load(
    topology: str,
    redis_url: str,
    wait_replicas: int,
    kill: Callable[[], Awaitable[None]],
    restore: Callable[[], Awaitable[None]],
    simulator: Simulator,
    tmp_path: Path,
    http: aiohttp.ClientSession,
    serving: list[web.AppRunner],
    processes: Processes,
) -> None:
    """Load, `kill`, see the creates resume, `restore`, then look for every payment and refund
    the clients were told of."""
    config = tmp_path / "routing.yaml"
    config.write_text(routing_yaml(simulator, total_timeout=30))
    receiver = await start_receiver(serving)
    # Every order is paid at once, so that refunds can be made during the run.
    await sim_json(http, simulator, "PUT", "/sim/faults", {"auto_pay_after_ms": 0})
    env = {"PAYROUTER_REDIS_WAIT_REPLICAS": str(wait_replicas)} if wait_replicas else {}
    fleet = await start_fleet(ROUTERS, redis_url, config, processes, env)
    _, secret, _ = await new_merchant(redis_url)
    run = Run()
    stop = asyncio.Event()
    clients = [
        sdk(fleet.urls[i % ROUTERS], secret, max_retries=0, key_in_use_timeout=30)
        for i in range(CLIENTS + 1)
    ]
    tasks = [
        asyncio.create_task(create_payments(c, run, receiver, f"w{i}", stop))
        for i, c in enumerate(clients[:CLIENTS])
    ]
    tasks.append(asyncio.create_task(refund_some(clients[CLIENTS], run, stop)))
    try:
        await eventually(lambda: _at_least(run.order, BEFORE), 30)
        await kill()
        killed_at = len(run.order)
        # Nothing restarts the routers: new creates succeed once the replica has taken over.
        await eventually(lambda: _at_least(run.order, killed_at + AFTER), 40)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        for c in clients:
            await c.close()
        await restore()

    # The outage is a 503 store_unavailable with Retry-After: never a 500, never a hang (the
    # SDK's timeout), never a refused connection (the routers stay up).
    assert run.counts()[RETRIED] > 0, "the clients never met the outage"
    assert run.no_retry_after == 0
    assert set(run.counts()) <= {RETRIED, SETTLED}, run.answers
    count = await unreplicated(fleet, http)
    async with sdk(fleet.urls[0], secret, max_retries=8) as client:
        lost = [p for p in run.ledger.acknowledged.values() if not await _found(client, p)]
        lost_refunds = [r for _, r in run.refunds.values() if not await _refund_found(client, r)]
        # A create cut short by the outage: its retry named the payment it made, now failed
        # and closed at the channel; never a second payment under the same key.
        for key, answer in run.ledger.failed.items():
            assert run.answers[key][0] == RETRIED and answer == SETTLED, (key, run.answers[key])
            named = await client.payments.get(run.ledger.named[key])
            assert named.status == "failed", named

        # The worker and the dispatcher went on too: nothing stays processing, and every event
        # reaches the merchant.
        async def settled() -> bool | None:
            found = [p async for p in client.payments.auto_paging_iter(limit=100)]
            return None if any(p.status == "processing" for p in found) else True

        await eventually(settled, timeout=30)
        events = {e.id async for e in client.events.auto_paging_iter(limit=100)}

    async def delivered() -> bool | None:
        got = {headers["webhook-id"] for _, headers, _ in receiver.received}
        return True if events <= got else None

    await eventually(delivered, timeout=30)
    print(
        f"{topology} failover, WAIT {wait_replicas}: acknowledged={len(run.ledger.acknowledged)}"
        f" found={len(run.ledger.acknowledged) - len(lost)} lost={len(lost)}"
        f" refunds={len(run.refunds)} refunds_lost={len(lost_refunds)}"
        f" unreplicated={count} events={len(events)} answers={dict(run.counts())}"
        f" slowest_error={run.slowest:.2f}s"
    )
    assert run.refunds, "no refund was made during the run"
    if wait_replicas:
        assert len(lost) + len(lost_refunds) <= count, (lost, lost_refunds)


async def _found(client: AsyncClient, pay_id: str) -> bool:
    try:
        await client.payments.get(pay_id)
    except NotFoundError:
        return False
    return True


async def _refund_found(client: AsyncClient, re_id: str) -> bool:
    try:
        await client.refunds.get(re_id)
    except NotFoundError:
        return False
    return True


async def _at_least(found: list[str], count: int) -> bool | None:
    return True if len(found) >= count else None


@pytest.mark.timeout(120)
@pytest.mark.parametrize("wait_replicas", [0, 1])
async def test_a_cluster_primary_killed_under_load(
    wait_replicas: int,
    redis_cluster: RedisClusterSetup,
    redis_cluster_url: str,
    simulator: Simulator,
    tmp_path: Path,
    http: aiohttp.ClientSession,
    serving: list[web.AppRunner],
    processes: Processes,
) -> None:
    # With 64 partitions spread evenly, every primary holds some of the traffic.
    victim = redis_cluster.primaries()[0]

    async def kill() -> None:
        redis_cluster.kill(victim)

    async def restore() -> None:
        # It rejoins as a replica of the node that took over.
        await asyncio.to_thread(redis_cluster.restart, victim)

    await failover_under_load(
        "cluster",
        redis_cluster_url,
        wait_replicas,
        kill,
        restore,
        simulator,
        tmp_path,
        http,
        serving,
        processes,
    )


@pytest.mark.timeout(120)
@pytest.mark.parametrize("wait_replicas", [0, 1])
async def test_a_sentinel_primary_killed_under_load(
    wait_replicas: int,
    redis_sentinel: RedisSentinelSetup,
    redis_sentinel_url: str,
    simulator: Simulator,
    tmp_path: Path,
    http: aiohttp.ClientSession,
    serving: list[web.AppRunner],
    processes: Processes,
) -> None:
    victim = redis_sentinel.primary()

    async def kill() -> None:
        # In a thread: it waits for the Sentinels while the clients keep sending.
        await asyncio.to_thread(redis_sentinel.kill_primary)

    async def restore() -> None:
        if not redis_sentinel.servers[victim].alive:
            await asyncio.to_thread(redis_sentinel.restart, victim)

    await failover_under_load(
        "sentinel",
        redis_sentinel_url,
        wait_replicas,
        kill,
        restore,
        simulator,
        tmp_path,
        http,
        serving,
        processes,
    )
