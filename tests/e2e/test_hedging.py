"""Hedged creates through the real API, against two simulators whose faults are set per
account: a slow leader's create is answered by the next account, the slow order is closed by
the router as soon as it is created (by the worker when that fails), a router that stalled
gives its create a grace before hedging, a barcode is never hedged, and the hedging budget
holds."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from router.api.middleware import RUNTIME
from router.payments import hedged
from tests.e2e.conftest import (
    ADMIN_TOKEN,
    Router,
    Simulator,
    account_yaml,
    channel_calls,
    eventually,
    sim_json,
    start_router,
    start_simulator,
)

SLOW = {"slow_rate": 1.0, "slow_ms": 1500}
"""Every call of the leader 1.5 s late: well past the hedge delay (and any stall grace a busy
machine may give it), within its 5 s timeout, and under the 2 s latency SLO (so, once it has
ended, it does not hand the lead to the backup)."""


def config(main: Simulator, backup: Simulator, hedge: str) -> str:
    return (
        "version: 1\naccounts:\n"
        + account_yaml("wechat_main", main, 5.0)
        + account_yaml("wechat_backup", backup, 5.0)
        + "rules:\n  - name: both\n    strategy: adaptive\n    exploration: 0\n"
        + "    accounts: [wechat_main, wechat_backup]\n"
        + "fees: {wechat_main: 0.38, wechat_backup: 0.6}\n"
        + f"adaptive:\n  hedge: {hedge}\n"
    )


@pytest.fixture
async def backup(tmp_path: Path, serving: list[web.AppRunner]) -> Simulator:
    return await start_simulator(tmp_path / "sandbox-backup", serving)


async def router_with(
    hedge: str,
    redis_url: str,
    simulator: Simulator,
    backup: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> Router:
    text = config(simulator, backup, hedge)
    return await start_router(redis_url, simulator, tmp_path, serving, http, config_text=text)


@pytest.fixture
async def router(
    redis_url: str,
    simulator: Simulator,
    backup: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> Router:
    """A router hedging after 100 to 150 ms between the two simulators."""
    hedge = "{min_delay_ms: 100, max_delay_ms: 150}"
    return await router_with(hedge, redis_url, simulator, backup, tmp_path, serving, http)


async def faults(http: aiohttp.ClientSession, sim: Simulator, body: object) -> None:
    status, _ = await sim_json(http, sim, "PUT", f"/sim/faults?account={sim.sandbox.mchid}", body)
    assert status == 200


async def order_state(http: aiohttp.ClientSession, sim: Simulator, pay_id: str) -> str | None:
    status, found = await sim_json(http, sim, "GET", f"/sim/orders/{pay_id}")
    return str(found["order"]["trade_state"]) if status == 200 else None


async def losers_settled(router: Router) -> None:
    """Wait until every hedged create's loser has ended and been recorded."""

    async def idle() -> bool | None:
        return True if not router.app[RUNTIME].background else None

    await eventually(idle)


async def abandoned(router: Router, pay_id: str) -> tuple[str, ...]:
    stored = await router.app[RUNTIME].store.payments.find(pay_id)
    assert stored is not None
    return stored.abandoned


async def hedges(router: Router) -> dict[str, float]:
    async with router.http.get(f"{router.url}/metrics") as resp:
        text = await resp.text()
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("payrouter_hedges_total{"):
            labels, value = line.rsplit(" ", 1)
            result = labels.split('result="', 1)[1].split('"', 1)[0]
            found[result] = found.get(result, 0.0) + float(value)
    return found


async def test_a_slow_leaders_create_is_answered_by_the_hedge_and_the_loser_closed(
    router: Router,
    simulator: Simulator,
    backup: Simulator,
    http: aiohttp.ClientSession,
) -> None:
    await faults(http, simulator, SLOW)
    status, body = await router.create()
    assert status == 201, body
    attempts = [(a["channel"], a["outcome"], a["hedge"]) for a in body["routing"]["attempts"]]
    assert attempts == [
        ("wechat_main", "abandoned", False),
        ("wechat_backup", "created", True),
    ]
    # The buyer was answered by the hedge, long before the leader's 1.5 s.
    assert body["routing"]["attempts"][0]["ms"] < 1500
    assert body["channel"] == "wechat_backup" and body["status"] == "pending"
    pay_id = body["id"]
    await losers_settled(router)
    # The leader's order was opened after all: the router closed it as soon as its create
    # answered (no query first) and took the account off the abandoned list.
    assert await order_state(http, simulator, pay_id) == "CLOSED"
    assert await abandoned(router, pay_id) == ()
    assert channel_calls(router, "wechat_main") == {"create": 1, "close": 1}
    # So the worker, when the payment's entry comes due, has nothing to ask the channel.
    await faults(http, simulator, {})
    router.clock.advance(6)
    while await router.worker.run_once():
        pass
    assert channel_calls(router, "wechat_main") == {"create": 1, "close": 1}
    # The winner's order is untouched: the buyer pays there.
    assert await order_state(http, backup, pay_id) == "NOTPAY"
    shown = await router.payment(pay_id)
    assert shown["status"] == "pending" and shown["channel"] == "wechat_backup"
    assert (await hedges(router)).get("won") == 1
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with http.get(
        f"{router.url}/admin/routing/explain?method=qr&amount=1999", headers=headers
    ) as r:
        explained = await r.json()
    assert explained["hedge"]["to"] in ("wechat_main", "wechat_backup")
    assert 100 <= explained["hedge"]["delay_ms"] <= 150


async def test_a_loser_the_router_cannot_close_is_left_to_the_worker(
    router: Router,
    simulator: Simulator,
    backup: Simulator,
    http: aiohttp.ClientSession,
) -> None:
    await faults(http, simulator, SLOW)
    status, body = await router.create()
    assert status == 201, body
    assert [a["hedge"] for a in body["routing"]["attempts"]] == [False, True], body
    pay_id = body["id"]
    # The leader's create is still under way (1.5 s); its channel now fails every close.
    await faults(http, simulator, {"error_rate": 1.0, "only": ["close"]})
    await losers_settled(router)
    assert await order_state(http, simulator, pay_id) == "NOTPAY"
    assert await abandoned(router, pay_id) == ("wechat_main",)
    await faults(http, simulator, {})
    router.clock.advance(6)
    while await router.worker.run_once():
        pass
    assert await order_state(http, simulator, pay_id) == "CLOSED"
    assert await abandoned(router, pay_id) == ("wechat_main",)  # the worker's entry is done
    assert channel_calls(router, "wechat_main") == {"create": 1, "close": 2, "query": 1}


async def test_a_stalled_router_does_not_hedge_a_create_its_channel_answered(
    router: Router,
    simulator: Simulator,
    backup: Simulator,
    http: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    start = hedged.start

    def stalling(*args: Any) -> hedged.Call:
        # The whole process stops for 0.4 s right after the create is sent: the hedge timer
        # fires late, while the channel's prompt answer waits to be read.
        call = start(*args)
        asyncio.get_running_loop().call_soon(time.sleep, 0.4)
        return call

    monkeypatch.setattr(hedged, "start", stalling)
    status, body = await router.create()
    assert status == 201, body
    attempts = [(a["channel"], a["outcome"], a["hedge"]) for a in body["routing"]["attempts"]]
    assert attempts == [("wechat_main", "created", False)]
    assert await order_state(http, backup, body["id"]) is None
    assert await hedges(router) == {"stalled": 1}


async def test_a_barcode_is_never_hedged(
    router: Router,
    simulator: Simulator,
    backup: Simulator,
    http: aiohttp.ClientSession,
) -> None:
    await faults(http, simulator, SLOW)
    status, body = await router.create(method="barcode", auth_code="134567890123456789")
    assert status in (200, 201), body
    attempts = body["routing"]["attempts"]
    assert [(a["channel"], a["outcome"], a["hedge"]) for a in attempts] == [
        ("wechat_main", "created", False)
    ]
    assert attempts[0]["ms"] >= 1500
    assert await order_state(http, backup, body["id"]) is None
    assert await hedges(router) == {}


async def test_hedging_stops_when_its_budget_is_spent(
    redis_url: str,
    simulator: Simulator,
    backup: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    router = await router_with(
        "{min_delay_ms: 100, max_delay_ms: 150, budget: 0, burst: 1}",
        redis_url,
        simulator,
        backup,
        tmp_path,
        serving,
        http,
    )
    await faults(http, simulator, SLOW)
    status, first = await router.create()
    assert status == 201, first
    assert [a["outcome"] for a in first["routing"]["attempts"]] == ["abandoned", "created"]
    await losers_settled(router)
    status, second = await router.create()
    assert status == 201, second
    # No hedge left: the slow leader answers, late.
    attempts = second["routing"]["attempts"]
    assert [(a["channel"], a["outcome"]) for a in attempts] == [("wechat_main", "created")]
    assert attempts[0]["ms"] >= 1500
    assert await order_state(http, backup, second["id"]) is None
    assert await hedges(router) == {"won": 1, "budget_spent": 1}
