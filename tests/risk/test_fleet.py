"""Rate limits shared by two real `payrouter serve` processes on one redis-server: the budget
holds across them, every answer carries the headers, nothing is a 5xx, and a refused create
leaves its Idempotency-Key free."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from router.clock import Clock
from router.store import keys, open_store
from tests.e2e.conftest import Processes, Simulator, routing_yaml
from tests.e2e.fleet import new_merchant, start_fleet

pytestmark = pytest.mark.e2e
READS, CREATES = 100, 30
RISK = f"""\
version: 1
rate_limits:
  tiers:
    default:
      merchant:
        read: {{per_second: 0.001, burst: {READS}}}
        create: {{per_second: 0.001, burst: {CREATES}}}
"""


async def fire(
    http: aiohttp.ClientSession, calls: Sequence[tuple[str, str, Any]], secret: str
) -> list[tuple[int, dict[str, str]]]:
    gate = asyncio.Semaphore(16)

    async def one(method: str, url: str, body: Any) -> tuple[int, dict[str, str]]:
        headers = {"Authorization": f"Bearer {secret}"}
        if method == "POST":
            headers["Idempotency-Key"] = f"key-{body['merchant_order_id']}"
        async with gate, http.request(method, url, json=body, headers=headers) as resp:
            await resp.read()
            return resp.status, dict(resp.headers)

    return await asyncio.gather(*(one(*call) for call in calls))


def check_headers(answers: list[tuple[int, dict[str, str]]], limit: int) -> None:
    for status, headers in answers:
        assert status in (200, 201, 429), status
        assert headers["RateLimit-Limit"] == str(limit)
        assert 0 <= int(headers["RateLimit-Remaining"]) < limit
        assert int(headers["RateLimit-Reset"]) >= 0
        assert ("Retry-After" in headers) == (status == 429)


async def test_two_routers_share_one_budget(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    processes: Processes,
    http: aiohttp.ClientSession,
) -> None:
    config = tmp_path / "routing.yaml"
    config.write_text(routing_yaml(simulator))
    risk = tmp_path / "risk.yaml"
    risk.write_text(RISK)
    fleet = await start_fleet(2, redis_url, config, processes, {"PAYROUTER_RISK": str(risk)})
    mch, secret, _ = await new_merchant(redis_url)

    reads = [("GET", f"{fleet.urls[i % 2]}/v1/payments?limit=1", None) for i in range(2 * READS)]
    answers = await fire(http, reads, secret)
    check_headers(answers, READS)
    ok = sum(status == 200 for status, _ in answers)
    # The refill over the run (0.001 per second) adds at most one.
    assert READS <= ok <= READS + 1, ok

    body = {"amount": 100, "method": "qr", "description": "fleet"}
    creates = [
        ("POST", f"{fleet.urls[i % 2]}/v1/payments", body | {"merchant_order_id": f"F{i}"})
        for i in range(2 * CREATES)
    ]
    answers = await fire(http, creates, secret)
    check_headers(answers, CREATES)
    made = sum(status == 201 for status, _ in answers)
    assert CREATES <= made <= CREATES + 1, made
    # Each create's screen went with its key's BEGIN; a refused one gave its key up.
    store = await open_store(redis_url, Clock())
    try:
        kept = [
            await store.redis.exists(keys.idempotency(mch, f"key-F{i}")) for i in range(2 * CREATES)
        ]
    finally:
        await store.close()
    assert [k == 1 for k in kept] == [status == 201 for status, _ in answers]
