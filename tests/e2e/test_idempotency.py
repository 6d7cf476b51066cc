"""Idempotency-Key through the API: which answers are remembered, how long a key is in use and
how that is announced, and what a retry says about a payment an earlier attempt created."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from router.api.middleware import RUNTIME
from tests.e2e.conftest import (
    FAST_WORKERS,
    Router,
    Simulator,
    eventually,
    routing_yaml,
    sim_json,
    start_router,
)

pytestmark = pytest.mark.every_topology

UNANSWERED = {"timeout_rate": 1.0, "hang_ms": 1500, "only": ["create", "query", "close"]}
"""The channel takes the create but answers too late, and cannot be asked about it or answer
a close of it either."""


def order(moid: str, **fields: Any) -> dict[str, Any]:
    return {"amount": 1999, "merchant_order_id": moid, "description": "Demo", "method": "qr"} | {
        **fields
    }


async def post(router: Router, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    status, data, _ = await router.request(
        "POST", "/v1/payments", json=body, headers={"Idempotency-Key": key}
    )
    return status, data


@pytest.fixture
async def quick(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> Router:
    """A router whose channel calls give up after half a second, and with a short lease."""
    return await start_router(
        redis_url,
        simulator,
        tmp_path,
        serving,
        http,
        config_text=routing_yaml(simulator, total_timeout=0.5),
        idempotency_lease_s=0.6,
    )


async def test_a_duplicate_order_conflict_is_not_remembered(
    quick: Router, simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    """The 409 depends on a payment that is not final yet; once it has failed, the same
    request with the same key must run again and create the payment."""
    await sim_json(http, simulator, "PUT", "/sim/faults", UNANSWERED)
    status, unknown = await post(quick, "first", order("DUP-1"))
    assert status == 502, unknown
    holder = unknown["error"]["payment_id"]
    status, conflict = await post(quick, "second", order("DUP-1"))
    assert status == 409 and conflict["error"]["code"] == "duplicate_order"
    assert conflict["error"]["payment_id"] == holder

    await sim_json(http, simulator, "PUT", "/sim/faults", {})
    quick.clock.advance(FAST_WORKERS.processing_grace_s + 1)
    while await quick.worker.run_once():
        pass
    assert (await quick.payment(holder))["status"] == "failed"

    status, created = await post(quick, "second", order("DUP-1"))
    assert status == 201, created
    assert created["id"] != holder and created["status"] == "pending"


async def test_a_retry_after_an_unknown_outcome_answers_about_that_payment(
    quick: Router, simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    """No second payment and no `duplicate_order`: the retry settles the first payment with
    the channel and names it, so the merchant knows every payment made under its key."""
    await sim_json(http, simulator, "PUT", "/sim/faults", UNANSWERED)
    status, unknown = await post(quick, "retry-me", order("UNK-1"))
    assert status == 502 and unknown["error"]["code"] == "channel_outcome_unknown"
    pay_id = unknown["error"]["payment_id"]

    status, still = await post(quick, "retry-me", order("UNK-1"))
    assert (status, still["error"]["code"]) == (502, "channel_outcome_unknown")
    assert still["error"]["payment_id"] == pay_id

    await sim_json(http, simulator, "PUT", "/sim/faults", {})
    status, failed = await post(quick, "retry-me", order("UNK-1"))
    assert status == 402, failed
    assert (failed["error"]["code"], failed["error"]["payment_id"]) == ("payment_failed", pay_id)
    _, sim_order = await sim_json(http, simulator, "GET", f"/sim/orders/{pay_id}")
    assert sim_order["order"]["trade_state"] == "CLOSED"
    status, replayed, headers = await quick.request(
        "POST", "/v1/payments", json=order("UNK-1"), headers={"Idempotency-Key": "retry-me"}
    )
    assert (status, replayed) == (402, failed)
    assert headers["Idempotent-Replayed"] == "true"
    _, page, _ = await quick.request("GET", "/v1/payments?merchant_order_id=UNK-1")
    assert [p["id"] for p in page["data"]] == [pay_id]


async def test_a_validation_error_is_not_remembered(quick: Router) -> None:
    status, refused = await post(quick, "fix-me", order("VAL-1", amount=0))
    assert status == 400, refused
    status, created = await post(quick, "fix-me", order("VAL-1"))
    assert status == 201, created


async def test_a_key_in_use_is_announced_with_retry_after_and_renewed(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    """The create takes three times the lease: it keeps renewing it, so a retry meanwhile is
    told to wait (never takes over), and is told for how long."""
    quick = await start_router(
        redis_url, simulator, tmp_path, serving, http, idempotency_lease_s=0.6
    )
    await sim_json(http, simulator, "PUT", "/sim/faults", {"latency_ms": 1800})
    body = order("SLOW-1")
    first = asyncio.create_task(post(quick, "slow", body))

    async def calling_the_channel() -> bool | None:
        _, page, _ = await quick.request("GET", "/v1/payments?merchant_order_id=SLOW-1")
        return True if page["data"] else None

    await eventually(calling_the_channel)
    metrics = quick.app[RUNTIME].metrics
    answers: list[tuple[int, str | None]] = []
    while not first.done():
        status, data, headers = await quick.request(
            "POST", "/v1/payments", json=body, headers={"Idempotency-Key": "slow"}
        )
        if status == 201:
            break
        assert (status, data["error"]["code"]) == (409, "idempotency_key_in_use"), data
        answers.append((status, headers.get("Retry-After")))
        await asyncio.sleep(0.2)
    status, created = await first
    assert status == 201, created
    # A lease of 0.6 s, renewed: never more than a second to wait, never less than one.
    assert answers and {retry_after for _, retry_after in answers} == {"1"}
    calls = metrics.channel_calls.labels("wechat_main", "create", "ok")._value.get()
    assert calls == 1
