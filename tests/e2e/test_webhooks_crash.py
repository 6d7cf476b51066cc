"""A router process killed with SIGKILL in the middle of webhook deliveries loses nothing.

The router runs as a real `payrouter serve` process; the WeChat Pay simulator, the merchant's
webhook receiver (slow on purpose) and Redis are real too. After the kill, a new process on
the same port takes over the notifications the simulator retries and the outbox entries the
dead process had taken but not finished.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from router.clock import Clock
from router.store import open_store
from tests.conftest import loopback_socket
from tests.e2e.conftest import (
    Processes,
    RouterProcess,
    Simulator,
    eventually,
    routing_yaml,
    sim_json,
)
from tests.e2e.test_webhooks import start_receiver

PAYMENTS = 8


@pytest.mark.timeout(120)
async def test_sigkill_mid_delivery_loses_nothing(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
    processes: Processes,
) -> None:
    receiver = await start_receiver(serving)
    receiver.hang = 0.4
    config = tmp_path / "routing.yaml"
    config.write_text(routing_yaml(simulator))
    with loopback_socket() as probe:
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PAYROUTER_REDIS_URL": redis_url,
        "PAYROUTER_DATABASE_URL": processes.database_url,
        "PAYROUTER_ROUTING": str(config),
        "PAYROUTER_PORT": str(port),
        "PAYROUTER_PUBLIC_URL": url,
        "PAYROUTER_WEBHOOK_SCHEDULE": "0s,1s,1s,1s",
        "PAYROUTER_WEBHOOK_CLAIM_IDLE": "1",
        "PAYROUTER_REQUERY_AFTER": "1",
    }
    store = await open_store(redis_url, Clock())
    merchant, issued = await store.merchants.create("Crash test shop")
    await store.close()
    headers = {"Authorization": f"Bearer {issued.secret}"}

    first = RouterProcess(env)
    processes.append(first)
    await first.start(url)
    paid: list[str] = []
    for i in range(PAYMENTS):
        body = {
            "amount": 100 + i,
            "merchant_order_id": f"K{i}",
            "description": "crash",
            "method": "qr",
            "notify_url": receiver.url,
        }
        async with http.post(f"{url}/v1/payments", json=body, headers=headers) as resp:
            created: dict[str, Any] = await resp.json()
            assert resp.status == 201, created
        await sim_json(
            http, simulator, "POST", "/sim/buyer/pay", {"code": created["action"]["qr_code"]}
        )
        paid.append(created["id"])

    async def some_delivered() -> bool | None:
        return True if receiver.received else None

    await eventually(some_delivered, timeout=30)
    first.kill()  # mid-delivery: the receiver takes 0.4 s per webhook

    second = RouterProcess(env)
    processes.append(second)
    await second.start(url)

    async def all_delivered() -> bool | None:
        got = {json.loads(body)["data"]["id"] for _, _, body in receiver.received}
        return True if set(paid) <= got else None

    await eventually(all_delivered, timeout=60)
    for pay_id in paid:
        async with http.get(f"{url}/v1/payments/{pay_id}", headers=headers) as resp:
            assert (await resp.json())["status"] == "succeeded"
    assert merchant.id
