"""The record's database stopped under load: two `payrouter serve` keep creating from Redis,
the drain lag grows, and once PostgreSQL is back every acknowledged payment reaches the record
in its final state, nothing lost."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select

from benchmarks.harness.postgres import PostgresServer
from router.record import open_record
from router.record.schema import payments
from tests.e2e.conftest import Processes, Simulator, eventually, routing_yaml, sim_json
from tests.e2e.fleet import Ledger, load, new_merchant, sdk, start_fleet
from tests.e2e.test_webhooks import start_receiver

DURING = 10
"""Creates acknowledged while the database is down, at least."""


@pytest.fixture
def config(simulator: Simulator, tmp_path: Path) -> Path:
    path = tmp_path / "routing.yaml"
    path.write_text(routing_yaml(simulator))
    return path


async def gauge(http: aiohttp.ClientSession, url: str, name: str) -> float:
    """A metric's value from a router's /metrics (0 when absent)."""
    async with http.get(f"{url}/metrics") as resp:
        text = await resp.text()
    found = [line for line in text.splitlines() if line.startswith(name + " ")]
    return float(found[0].split()[-1]) if found else 0.0


async def recorded(url: str) -> dict[str, str]:
    """Payment id -> status, as the record holds them."""
    record = await open_record(url)
    try:
        async with record.engine.connect() as conn:
            rows = await conn.execute(select(payments.c.id, payments.c.status))
            return {row.id: row.status for row in rows}
    finally:
        await record.close()


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.timeout(150)
async def test_the_database_stopped_under_load_loses_nothing(
    redis_url: str,
    simulator: Simulator,
    config: Path,
    http: aiohttp.ClientSession,
    serving: list[web.AppRunner],
    processes: Processes,
    postgres_server: PostgresServer,
) -> None:
    receiver = await start_receiver(serving)
    # Every order is paid at once: each payment reaches a final state the record must show.
    await sim_json(http, simulator, "PUT", "/sim/faults", {"auto_pay_after_ms": 0})
    fleet = await start_fleet(2, redis_url, config, processes)
    _, secret, _ = await new_merchant(redis_url)
    ledger = Ledger()
    stop = asyncio.Event()
    clients = [sdk(fleet.urls[i % 2], secret, max_retries=8) for i in range(4)]
    loaders = [
        asyncio.create_task(load(c, ledger, receiver, f"w{i}", stop)) for i, c in enumerate(clients)
    ]
    paused = False
    try:
        await eventually(lambda: _at_least(ledger.acknowledged, 10), 30)
        postgres_server.pause()
        paused = True
        before = len(ledger.acknowledged)
        await eventually(lambda: _at_least(ledger.acknowledged, before + DURING), 60)

        async def lagging() -> float | None:
            lag = await gauge(http, fleet.urls[0], "payrouter_record_lag_seconds")
            return lag if lag >= 2.0 else None

        # The API answered from Redis all along; the changes wait, older and older.
        await eventually(lagging, 30)
        errors = await gauge(http, fleet.urls[0], "payrouter_record_drain_errors_total")
        errors += await gauge(http, fleet.urls[1], "payrouter_record_drain_errors_total")
        assert errors >= 1
        postgres_server.resume()
        paused = False
    finally:
        if paused:
            postgres_server.resume()
        stop.set()
        await asyncio.gather(*loaders)
        for client in clients:
            await client.close()
    assert not ledger.failed, ledger.failed

    paid = set(ledger.acknowledged.values())
    auth = {"Authorization": f"Bearer {secret}"}

    async def all_paid() -> bool | None:
        for pay_id in paid:
            async with http.get(f"{fleet.urls[0]}/v1/payments/{pay_id}", headers=auth) as resp:
                body: dict[str, Any] = await resp.json()
            if body["status"] != "succeeded":
                return None
        return True

    await eventually(all_paid, 60)

    async def caught_up() -> dict[str, str] | None:
        for url in fleet.urls:
            if await gauge(http, url, "payrouter_record_lag_seconds") > 0:
                return None
        found = await recorded(processes.database_url)
        return found if all(found.get(p) == "succeeded" for p in paid) else None

    found = await eventually(caught_up, 60)
    assert paid <= set(found)


def _at_least(acknowledged: dict[str, str], n: int) -> Any:
    async def check() -> bool | None:
        return True if len(acknowledged) >= n else None

    return check()
