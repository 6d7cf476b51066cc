"""Chaos end to end: two WeChat Pay accounts on two simulators, one router (or two) on Redis.

The preferred account fails; payments that have a healthy alternative all succeed, the breaker
opens and is seen by every router process, and traffic returns once the account recovers.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from router.api.middleware import RUNTIME
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

pytestmark = pytest.mark.every_topology

BREAKER = """\
breaker:
  failure_rate: 0.5
  min_calls: 20
  consecutive_failures: 3
  open_s: 2
  max_open_s: 10
  half_open_probes: 1
  close_after: 2
"""


def two_accounts(main: Simulator, backup: Simulator, total_timeout: float = 3.0) -> str:
    return (
        "version: 1\naccounts:\n"
        + account_yaml("wechat_main", main, total_timeout)
        + account_yaml("wechat_backup", backup, total_timeout)
        + "rules:\n  - name: prefer-main\n    accounts: [wechat_main, wechat_backup]\n"
        + BREAKER
    )


@pytest.fixture
async def backup(tmp_path: Path, serving: list[web.AppRunner]) -> Simulator:
    return await start_simulator(tmp_path / "sandbox-backup", serving)


@pytest.fixture
async def pair(
    redis_url: str,
    simulator: Simulator,
    backup: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> Router:
    return await start_router(
        redis_url,
        simulator,
        tmp_path,
        serving,
        http,
        config_text=two_accounts(simulator, backup, total_timeout=1.0),
    )


async def admin(router: Router, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with router.http.request(method, router.url + path, json=body, headers=headers) as r:
        return r.status, await r.json()


async def breaker_of(router: Router, account: str) -> str:
    _, body = await admin(router, "GET", "/admin/channels")
    return str(next(row["breaker"] for row in body["data"] if row["account"] == account))


async def test_outage_fails_over_without_a_merchant_visible_failure(
    pair: Router, simulator: Simulator, backup: Simulator, http: aiohttp.ClientSession
) -> None:
    await sim_json(http, simulator, "PUT", "/sim/faults", {"outage": True})
    results = [await pair.create() for _ in range(12)]
    assert [status for status, _ in results] == [201] * 12
    assert {body["channel"] for _, body in results} == {"wechat_backup"}
    tried_main = [
        body
        for _, body in results
        if any(a["channel"] == "wechat_main" for a in body["routing"]["attempts"])
    ]
    # Three hard failures trip the breaker; after that wechat_main is not even tried.
    assert len(tried_main) == 3
    assert tried_main[0]["routing"]["attempts"][0]["outcome"] == "unavailable"
    assert await breaker_of(pair, "wechat_main") == "open"
    metrics = pair.app[RUNTIME].metrics
    assert metrics.failovers.labels("wechat_main", "unavailable")._value.get() == 3

    # The channel recovers; after open_s the breaker lets probes through, then closes.
    await sim_json(http, simulator, "PUT", "/sim/faults", {})
    pair.clock.advance(2.5)
    assert await breaker_of(pair, "wechat_main") == "half_open"
    after = [await pair.create() for _ in range(4)]
    assert [body["channel"] for _, body in after] == ["wechat_main"] * 4
    assert await breaker_of(pair, "wechat_main") == "closed"


async def test_a_second_router_sees_the_open_breaker(
    pair: Router,
    simulator: Simulator,
    backup: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
    redis_url: str,
) -> None:
    (tmp_path / "other").mkdir()
    other = await start_router(
        redis_url,
        simulator,
        tmp_path / "other",
        serving,
        http,
        config_text=two_accounts(simulator, backup, total_timeout=1.0),
        merchant=(pair.merchant_id, pair.key_id, pair.secret),
    )
    await sim_json(http, simulator, "PUT", "/sim/faults", {"outage": True})
    for _ in range(3):
        assert (await pair.create())[0] == 201
    status, body = await other.create()
    assert status == 201
    assert [a["channel"] for a in body["routing"]["attempts"]] == ["wechat_backup"]


async def test_an_ambiguous_timeout_never_leaves_two_live_orders(
    pair: Router, simulator: Simulator, backup: Simulator, http: aiohttp.ClientSession
) -> None:
    await sim_json(
        http,
        simulator,
        "PUT",
        "/sim/faults",
        {"timeout_rate": 1.0, "hang_ms": 2500, "only": ["create"]},
    )
    status, body = await pair.create(merchant_order_id="AMBIGUOUS-1")
    assert status == 201, body
    assert body["channel"] == "wechat_backup"
    outcomes = [(a["channel"], a["outcome"]) for a in body["routing"]["attempts"]]
    assert outcomes == [("wechat_main", "unknown"), ("wechat_backup", "created")]
    # The order the slow channel did create was closed there before moving on.
    _, order = await sim_json(http, simulator, "GET", f"/sim/orders/{body['id']}")
    assert order["order"]["trade_state"] == "CLOSED"
    _, live = await sim_json(http, backup, "GET", f"/sim/orders/{body['id']}")
    assert live["order"]["trade_state"] == "NOTPAY"


async def test_unknown_barcode_outcome_that_cannot_be_checked_is_not_failed_over(
    pair: Router, simulator: Simulator, backup: Simulator, http: aiohttp.ClientSession
) -> None:
    # The buyer's code may already be charged at wechat_main: no second charge elsewhere.
    await sim_json(http, simulator, "PUT", "/sim/faults", {"timeout_rate": 1.0, "hang_ms": 2500})
    status, body = await pair.create(method="barcode", auth_code="134567890123456789")
    assert status == 502
    pay_id = body["error"]["payment_id"]
    assert (await pair.payment(pay_id))["status"] == "processing"
    code, _ = await sim_json(http, backup, "GET", f"/sim/orders/{pay_id}")
    assert code == 404


async def test_buyer_initiated_unknown_outcome_fails_over_and_the_order_is_closed_later(
    pair: Router, simulator: Simulator, backup: Simulator, http: aiohttp.ClientSession
) -> None:
    # Creates and closes are processed but answered too late: no proof either way.
    await sim_json(http, simulator, "PUT", "/sim/faults", {"timeout_rate": 1.0, "hang_ms": 2500})
    status, body = await pair.create()
    assert status == 201, body
    assert body["channel"] == "wechat_backup"
    outcomes = [(a["channel"], a["outcome"]) for a in body["routing"]["attempts"]]
    assert outcomes == [("wechat_main", "unknown"), ("wechat_backup", "created")]
    # The close went out without a query first (nobody saw that order, nobody can have paid
    # it); it was carried out, but its answer never came: the account is left to the worker.
    assert (channel_calls(pair, "wechat_main")) == {"create": 1, "close": 1}
    stored = await pair.app[RUNTIME].store.payments.find(body["id"])
    assert stored is not None and stored.abandoned == ("wechat_main",)
    _, left = await sim_json(http, simulator, "GET", f"/sim/orders/{body['id']}")
    assert left["order"]["trade_state"] == "CLOSED"

    # While the channel still hangs, the worker cannot settle it and looks again later; once
    # the channel answers, it finds the order closed and has nothing more to do.
    worker = pair.worker
    pair.clock.advance(6)
    # The payment's entry and its abandoned order's share a partition: one per pass.
    while await worker.run_once():
        pass
    assert (channel_calls(pair, "wechat_main")) == {"create": 1, "close": 1, "query": 1}
    await sim_json(http, simulator, "PUT", "/sim/faults", {})
    pair.clock.advance(31)
    while await worker.run_once():
        pass
    assert (channel_calls(pair, "wechat_main")) == {"create": 1, "close": 1, "query": 2}
    pair.clock.advance(31)
    while await worker.run_once():
        pass
    assert (channel_calls(pair, "wechat_main")) == {"create": 1, "close": 1, "query": 2}
    _, live = await sim_json(http, backup, "GET", f"/sim/orders/{body['id']}")
    assert live["order"]["trade_state"] == "NOTPAY"


async def test_operator_override_and_admin_auth(pair: Router, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{pair.url}/admin/channels") as resp:
        assert resp.status == 401
    status, row = await admin(
        pair, "PUT", "/admin/channels/wechat_main/override", {"forced": "open"}
    )
    assert status == 200
    assert row["breaker"] == "forced_open"
    _, body = await pair.create()
    assert [a["channel"] for a in body["routing"]["attempts"]] == ["wechat_backup"]
    status, err = await admin(
        pair, "PUT", "/admin/channels/wechat_main/override", {"forced": "sideways"}
    )
    assert status == 400
    assert err["error"]["param"] == "forced"
    await admin(pair, "PUT", "/admin/channels/wechat_main/override", {"forced": None})
    assert (await pair.create())[1]["channel"] == "wechat_main"
    status, explained = await admin(pair, "GET", "/admin/routing/explain?method=qr&amount=100")
    assert status == 200
    assert explained["rule"] == "prefer-main"
    assert explained["pick"] == "wechat_main"
    async with http.get(f"{pair.url}/metrics") as resp:
        text = await resp.text()
    assert 'payrouter_channel_breaker_state{account="wechat_main"} 0.0' in text
    assert 'payrouter_channel_health_score{account="wechat_backup"}' in text


async def test_hot_reload_swaps_config_and_refuses_a_bad_file(
    redis_url: str,
    simulator: Simulator,
    backup: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    router = await start_router(
        redis_url,
        simulator,
        tmp_path,
        serving,
        http,
        config_text=two_accounts(simulator, backup),
        watch_config=True,
    )
    path = tmp_path / "routing.yaml"
    assert (await router.create())[1]["channel"] == "wechat_main"
    _, before = await admin(router, "GET", "/admin/routing")

    path.write_text(
        two_accounts(simulator, backup).replace(
            "accounts: [wechat_main, wechat_backup]", "accounts: [wechat_backup, wechat_main]"
        )
    )

    async def swapped() -> dict[str, Any] | None:
        _, now = await admin(router, "GET", "/admin/routing")
        return now if now["version"] != before["version"] else None

    await eventually(swapped)
    assert (await router.create())[1]["channel"] == "wechat_backup"

    path.write_text("version: 1\naccounts: {}\n")
    await asyncio.sleep(0.3)  # the watcher polls every 50 ms
    _, status = await admin(router, "GET", "/admin/routing")
    assert status["last_refused"] is not None
    assert "accounts" in status["last_refused"]["problems"][0]
    assert (await router.create())[1]["channel"] == "wechat_backup"
    refused = router.app[RUNTIME].metrics.config_reloads.labels("refused")._value.get()
    assert refused >= 1
    code, err = await admin(router, "POST", "/admin/routing/reload")
    assert code == 400
    assert err["error"]["code"] == "config_refused"
