"""A create's risk screen shares the round trip of its idempotency BEGIN, and the two running
side by side changes nothing a merchant sees: a refused create leaves its key free, a replay
is not counted again (real router on loopback, real redis-server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from redis.asyncio.connection import AbstractConnection

from router.api.middleware import RUNTIME
from router.clock import from_ms
from router.risk.rules import RiskRequest
from router.store import keys
from tests.e2e.conftest import Simulator
from tests.risk.test_api import SHIPPED, TIGHT, start

pytestmark = pytest.mark.e2e


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every write the router's Redis connections make (one per command or pipeline)."""
    writes: list[bytes] = []
    real = AbstractConnection.send_packed_command

    async def recording(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        parts = [command] if isinstance(command, bytes | str) else list(command)
        writes.append(b"".join(p.encode() if isinstance(p, str) else bytes(p) for p in parts))
        await real(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", recording)
    return writes


def order(i: str, **extra: Any) -> dict[str, Any]:
    return {
        "amount": 1999,
        "description": "Demo",
        "method": "qr",
        "merchant_order_id": f"RT-{i}",
        "client_ip": "192.0.2.10",
        "payer_id": "oPayerRoundTrip",
    } | extra


async def test_the_screen_goes_in_the_begin_round_trip(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
    sent: list[bytes],
    redis_topology: str,
) -> None:
    if redis_topology == "cluster":
        pytest.skip("a cluster pipeline is one write per node, all sent before any reply")
    router, _ = await start(redis_url, simulator, tmp_path, serving, http, SHIPPED)
    idem_key = keys.idempotency(router.merchant_id, "rt-one").encode()
    bucket = keys.rate_bucket(router.merchant_id, "create").encode()
    sent.clear()
    status, body, headers = await router.request(
        "POST", "/v1/payments", json=order("one"), headers={"Idempotency-Key": "rt-one"}
    )
    assert status == 201, body
    assert "RateLimit-Remaining" in headers
    with_begin = [w for w in sent if idem_key in w and b"EVALSHA" in w.upper()]
    with_screen = [w for w in sent if bucket in w]
    assert len(with_screen) == 1
    assert with_screen[0] in with_begin  # one write: BEGIN and the screen together


async def test_a_refused_create_leaves_its_key_free_for_the_retry(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    router, _ = await start(redis_url, simulator, tmp_path, serving, http, TIGHT)
    redis = router.app[RUNTIME].store.redis
    for i in range(2):
        status, body, _ = await router.request(
            "POST", "/v1/payments", json=order(str(i)), headers={"Idempotency-Key": f"k{i}"}
        )
        assert status == 201, body
    retry = {"Idempotency-Key": "k-late"}
    for _ in range(2):
        # Refused again, not "in use" (409) nor a replayed 429: the key was given up.
        status, body, headers = await router.request(
            "POST", "/v1/payments", json=order("late"), headers=retry
        )
        assert (status, body["error"]["code"]) == (429, "rate_limited"), body
        assert "Idempotent-Replayed" not in headers
        assert await redis.exists(keys.idempotency(router.merchant_id, "k-late")) == 0
    router.clock.advance(200)  # two tokens back at 0.01/s
    status, body, _ = await router.request(
        "POST", "/v1/payments", json=order("late"), headers=retry
    )
    assert status == 201, body
    status, again, headers = await router.request(
        "POST", "/v1/payments", json=order("late"), headers=retry
    )
    assert (status, again["id"], headers["Idempotent-Replayed"]) == (201, body["id"], "true")


async def test_a_replay_is_not_counted_again(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    # The shipped rules with a create budget that refills too slowly to matter: at the
    # shipped 25/s a loaded machine's slow request would see a token come back between two.
    slow = SHIPPED.replace(
        "create: {per_second: 25, burst: 50}", "create: {per_second: 0.01, burst: 50}", 1
    )
    assert slow != SHIPPED
    router, _ = await start(redis_url, simulator, tmp_path, serving, http, slow)
    rt = router.app[RUNTIME]
    body = order("replayed")
    answers = [
        await router.request("POST", "/v1/payments", json=body, headers={"Idempotency-Key": "r"})
        for _ in range(3)
    ]
    assert [a[0] for a in answers] == [201, 201, 201]
    assert [a[2].get("Idempotent-Replayed") for a in answers] == [None, "true", "true"]
    # Every answer spent a token of the create budget, replays included, as before.
    remaining = [int(a[2]["RateLimit-Remaining"]) for a in answers]
    assert remaining == [49, 48, 47]
    seen = await rt.risk.peek(
        RiskRequest(
            merchant=router.merchant_id,
            amount=1999,
            currency="CNY",
            method="qr",
            wallet=None,
            channel=None,
            livemode=False,
            metadata={},
            ip="192.0.2.10",
            payer="oPayerRoundTrip",
            now=from_ms(rt.clock.now_ms()),
        )
    )
    assert (seen.features["payer_count_1h"], seen.features["payer_sum_24h"]) == (1, 1999)
