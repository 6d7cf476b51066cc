"""`payrouter serve` processes under SDK load, shared by the chaos suites: a fleet of routers
on one store, a merchant, SDK clients, and the ledger of what each Idempotency-Key was told."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from payrouter_sdk import AsyncClient, PayrouterError
from router.clock import Clock
from router.store import open_store
from tests.conftest import loopback_socket
from tests.e2e.conftest import Processes, RouterProcess
from tests.e2e.test_webhooks import Receiver

LEASE_S = 2
"""`PAYROUTER_IDEMPOTENCY_LEASE`: how long a killed router's keys stay in use."""
GRACE_S = 2
"""`PAYROUTER_PROCESSING_GRACE`: how long before the worker settles a stranded payment."""
RISK_OFF = Path(__file__).resolve().parents[1] / "fixtures" / "risk-off.yaml"
"""`PAYROUTER_RISK` of a fleet unless `extra_env` says otherwise: the chaos load would meet
the shipped rate limits."""


@dataclass
class Fleet:
    """Router processes sharing one Redis, each on its own port."""

    env: dict[str, str]
    urls: list[str] = field(default_factory=list)
    procs: list[RouterProcess] = field(default_factory=list)

    async def start(self, index: int) -> None:
        port = self.urls[index].rsplit(":", 1)[1]
        proc = RouterProcess(self.env | {"PAYROUTER_PORT": port})
        await proc.start(self.urls[index])
        self.procs[index] = proc

    def kill(self, index: int) -> None:
        self.procs[index].kill()


async def start_fleet(
    size: int,
    redis_url: str,
    config: Path,
    processes: Processes,
    extra_env: dict[str, str] | None = None,
) -> Fleet:
    """`size` routers with short leases, grace periods and retry waits (`extra_env` added),
    each answering `/readyz`."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PAYROUTER_REDIS_URL": redis_url,
        "PAYROUTER_DATABASE_URL": processes.database_url,
        "PAYROUTER_ROUTING": str(config),
        "PAYROUTER_IDEMPOTENCY_LEASE": str(LEASE_S),
        "PAYROUTER_PROCESSING_GRACE": str(GRACE_S),
        "PAYROUTER_REQUERY_AFTER": "1",
        "PAYROUTER_WEBHOOK_SCHEDULE": "0s,1s,1s,1s,1s,1s",
        "PAYROUTER_WEBHOOK_CLAIM_IDLE": "1",
        "PAYROUTER_RISK": str(RISK_OFF),
    } | (extra_env or {})
    fleet = Fleet(env)
    for _ in range(size):
        with loopback_socket() as probe:
            fleet.urls.append(f"http://127.0.0.1:{probe.getsockname()[1]}")
        fleet.procs.append(RouterProcess(env))
    await asyncio.gather(*(fleet.start(i) for i in range(size)))
    # The fixture stops whatever runs at the end, including the restarted processes.
    processes.extend(fleet.procs)
    return fleet


async def new_merchant(redis_url: str) -> tuple[str, str, list[str]]:
    """A merchant made directly in the store: its id, API secret and webhook secrets."""
    store = await open_store(redis_url, Clock())
    try:
        merchant, issued = await store.merchants.create("Chaos shop")
        return merchant.id, issued.secret, await store.merchants.webhook_secrets(merchant.id)
    finally:
        await store.close()


def sdk(url: str, secret: str, **options: Any) -> AsyncClient:
    """An SDK client with a short first backoff."""
    client = AsyncClient(api_key=secret, base_url=url, timeout=10, **options)
    client.initial_retry_delay = 0.2
    return client


def create_body(order: str, receiver: Receiver) -> dict[str, Any]:
    """A 1.00 QR payment whose events go to `receiver`."""
    return {
        "amount": 100,
        "merchant_order_id": order,
        "description": "chaos",
        "method": "qr",
        "notify_url": receiver.url,
    }


@dataclass
class Ledger:
    """What the merchant was told, per Idempotency-Key."""

    acknowledged: dict[str, str] = field(default_factory=dict)
    """key -> the payment id of its 201."""
    named: dict[str, str] = field(default_factory=dict)
    """key -> the payment an error answer named (a 402, say)."""
    failed: dict[str, str] = field(default_factory=dict)
    """key -> the error the SDK gave up with."""
    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)


async def load(
    client: AsyncClient, ledger: Ledger, receiver: Receiver, name: str, stop: asyncio.Event
) -> None:
    """Create payments one after the other, each under a new key, until `stop`."""
    n = 0
    while not stop.is_set():
        n += 1
        key = f"{name}-{n}"
        body = ledger.bodies[key] = create_body(f"O-{key}", receiver)
        try:
            payment = await client.payments.create(**body, idempotency_key=key)
        except PayrouterError as exc:
            payment_id = getattr(exc, "payment_id", None)
            if payment_id:
                ledger.named[key] = payment_id
            ledger.failed[key] = f"{exc.status} {exc.code}: {exc}"
            continue
        ledger.acknowledged[key] = payment.id
