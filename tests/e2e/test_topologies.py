"""A payment's life through the router on a Sentinel-managed primary, with the WeChat Pay
simulator, all on loopback, across a failover.

(On a Redis Cluster, `start_router(redis_cluster_url, ...)` fails today on the key layout:
pipelined EVALSHA and cross-slot MULTI, issue 11's key-layout part.)"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
import redis
from aiohttp import web

from benchmarks.harness.topologies import HOST, RedisSentinelSetup
from tests.e2e.conftest import Router, Simulator, sim_json, start_router

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]


async def pay(router: Router, simulator: Simulator, http: aiohttp.ClientSession) -> str:
    """Create a payment, have the buyer pay it, wait until the router says so."""
    status, created = await router.create(amount=1999)
    assert status == 201, created
    code, _ = await sim_json(
        http, simulator, "POST", "/sim/buyer/pay", {"code": created["action"]["qr_code"]}
    )
    assert code == 200
    paid = await router.wait_status(created["id"], "succeeded")
    return str(paid["id"])


async def test_a_payment_on_a_sentinel_primary_survives_a_failover(
    redis_sentinel: RedisSentinelSetup,
    redis_sentinel_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    router = await start_router(redis_sentinel_url, simulator, tmp_path, serving, http)
    first = await pay(router, simulator, http)
    # Replication is asynchronous: the test wants the replica to hold the first payment.
    assert ask_wait(redis_sentinel) == 1
    old, _ = redis_sentinel.kill_primary()
    try:
        # The router's pooled connections went to the dead primary: the first request may
        # answer 503 store_unavailable, after which the client asks the Sentinels again.
        for _ in range(3):
            status, body, _ = await router.request("GET", f"/v1/payments/{first}")
            if status != 503:
                break
        assert status == 200, body
        assert body["status"] == "succeeded"
        await pay(router, simulator, http)
    finally:
        redis_sentinel.restart(old)


def ask_wait(setup: RedisSentinelSetup) -> int:
    """`WAIT 1 5000` on the primary: how many replicas acknowledged every write so far."""
    with redis.Redis(host=HOST, port=setup.primary()) as client:
        return int(client.wait(1, 5000))
