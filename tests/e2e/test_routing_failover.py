"""Failover through the real API against simulators whose faults are set per account: no
merchant-visible failure while a healthy account exists, open accounts as the last resort,
and the `adaptive` strategy's terms in the routing explanation."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from router.api.middleware import RUNTIME
from tests.checkout.conftest import UA
from tests.e2e.conftest import (
    ADMIN_TOKEN,
    Router,
    Simulator,
    account_yaml,
    sim_json,
    start_router,
    start_simulator,
)

BREAKER = """\
breaker:
  consecutive_failures: 3
  open_s: 30
  max_open_s: 60
  close_after: 2
"""


def config(main: Simulator, backup: Simulator, strategy: str, extra: str = "") -> str:
    return (
        "version: 1\naccounts:\n"
        + account_yaml("wechat_main", main, 1.0)
        + account_yaml("wechat_backup", backup, 1.0)
        + f"rules:\n  - name: both\n    strategy: {strategy}\n"
        + "    accounts: [wechat_main, wechat_backup]\n"
        + "fees: {wechat_main: 0.38, wechat_backup: 0.6}\n"
        + BREAKER
        + extra
    )


@pytest.fixture
async def backup(tmp_path: Path, serving: list[web.AppRunner]) -> Simulator:
    return await start_simulator(tmp_path / "sandbox-backup", serving)


async def router_for(
    strategy: str,
    redis_url: str,
    simulator: Simulator,
    backup: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
    extra: str = "",
) -> Router:
    text = config(simulator, backup, strategy, extra)
    return await start_router(redis_url, simulator, tmp_path, serving, http, config_text=text)


async def account_faults(
    http: aiohttp.ClientSession, sim: Simulator, body: object
) -> tuple[int, object]:
    """Faults for the sandbox merchant of `sim` only, by its mchid."""
    return await sim_json(http, sim, "PUT", f"/sim/faults?account={sim.sandbox.mchid}", body)


async def test_faults_set_for_one_account_spare_the_others(
    redis_url: str,
    simulator: Simulator,
    backup: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    router = await router_for("priority", redis_url, simulator, backup, tmp_path, serving, http)
    # Another merchant's outage on the same simulator does not touch this one.
    status, _ = await sim_json(
        http, simulator, "PUT", "/sim/faults?account=1900009999", {"outage": True}
    )
    assert status == 200
    _, body = await router.create()
    assert [a["channel"] for a in body["routing"]["attempts"]] == ["wechat_main"]
    await account_faults(http, simulator, {"outage": True})
    _, shown = await sim_json(
        http, simulator, "GET", f"/sim/faults?account={simulator.sandbox.mchid}"
    )
    assert shown["outage"] is True
    _, body = await router.create()
    assert [a["outcome"] for a in body["routing"]["attempts"]] == ["unavailable", "created"]
    status, _ = await sim_json(
        http, simulator, "DELETE", f"/sim/faults?account={simulator.sandbox.mchid}"
    )
    assert status == 200
    _, body = await router.create()
    assert [a["channel"] for a in body["routing"]["attempts"]] == ["wechat_main"]
    status, err = await sim_json(http, simulator, "PUT", "/sim/faults?account=", {})
    assert status == 400 and "account" in str(err)


async def test_an_open_account_is_the_last_resort_when_every_other_fails(
    redis_url: str,
    simulator: Simulator,
    backup: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    router = await router_for("priority", redis_url, simulator, backup, tmp_path, serving, http)
    await account_faults(http, simulator, {"outage": True})
    for _ in range(3):
        assert (await router.create())[0] == 201
    # wechat_main is open now; it recovers while the backup goes down.
    await account_faults(http, simulator, {})
    await account_faults(http, backup, {"outage": True})
    status, body = await router.create()
    assert status == 201, body
    attempts = [(a["channel"], a["outcome"]) for a in body["routing"]["attempts"]]
    assert attempts == [("wechat_backup", "unavailable"), ("wechat_main", "created")]
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with http.get(
        f"{router.url}/admin/routing/explain?method=qr&amount=100", headers=headers
    ) as r:
        explained = await r.json()
    assert explained["last_resort"] == ["wechat_main"]


async def test_when_every_breaker_is_open_the_last_resort_is_tried(
    redis_url: str,
    simulator: Simulator,
    backup: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    """No candidate at all, only last resorts: the create starts at the best of them (it
    answered 500 when the payment was written with the first candidate's account)."""
    router = await router_for("priority", redis_url, simulator, backup, tmp_path, serving, http)
    await account_faults(http, simulator, {"outage": True})
    await account_faults(http, backup, {"outage": True})
    for _ in range(3):
        assert (await router.create())[0] == 503
    await account_faults(http, simulator, {})
    status, body = await router.create()
    assert status == 201, body
    assert body["channel"] == "wechat_main"


async def test_without_a_last_resort_every_open_account_is_a_503(
    redis_url: str,
    simulator: Simulator,
    backup: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    router = await router_for(
        "priority",
        redis_url,
        simulator,
        backup,
        tmp_path,
        serving,
        http,
        extra="  last_resort: 0\n",
    )
    await account_faults(http, simulator, {"outage": True})
    for _ in range(3):
        await router.create()
    await account_faults(http, simulator, {})
    await account_faults(http, backup, {"outage": True})
    status, body = await router.create()
    assert status == 503, body
    assert body["error"]["code"] == "channel_unavailable"


async def test_adaptive_routes_around_a_failing_account_without_merchant_failures(
    redis_url: str,
    simulator: Simulator,
    backup: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    router = await router_for("adaptive", redis_url, simulator, backup, tmp_path, serving, http)
    # The cheaper account fails 40% of creates, queries and closes: no proof either way.
    await account_faults(http, simulator, {"error_rate": 0.4})
    results = [await router.create() for _ in range(40)]
    assert [status for status, _ in results] == [201] * 40
    firsts = [body["routing"]["attempts"][0]["channel"] for _, body in results]
    assert firsts[-10:].count("wechat_backup") >= 8
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with http.get(
        f"{router.url}/admin/routing/explain?method=qr&amount=1999", headers=headers
    ) as r:
        explained = await r.json()
    assert explained["strategy"] == "adaptive"
    terms = {row["account"]: row["terms"] for row in explained["considered"]}
    assert terms["wechat_main"]["success"] < terms["wechat_backup"]["success"]
    assert terms["wechat_main"]["fee_pct"] == 0.38


async def test_when_no_account_is_left_to_try_the_last_unsure_one_is_settled_later(
    redis_url: str,
    simulator: Simulator,
    backup: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    router = await router_for("priority", redis_url, simulator, backup, tmp_path, serving, http)
    hang = {"timeout_rate": 1.0, "hang_ms": 1500}
    await account_faults(http, simulator, hang)
    await account_faults(http, backup, hang)
    status, body = await router.create()
    # No account is left to try after the backup: that one is settled as before, by the
    # worker, and the abandoned order at wechat_main is closed beside it.
    assert status == 502, body
    assert body["error"]["code"] == "channel_outcome_unknown"
    pay_id = body["error"]["payment_id"]
    assert (await router.payment(pay_id))["status"] == "processing"
    await account_faults(http, simulator, {})
    await account_faults(http, backup, {})
    router.clock.advance(6)
    # The payment and its abandoned order share a partition: one entry per pass.
    while await router.worker.run_once():
        pass
    assert (await router.payment(pay_id))["status"] == "failed"
    for sim in (simulator, backup):
        _, order = await sim_json(http, sim, "GET", f"/sim/orders/{pay_id}")
        assert order["order"]["trade_state"] == "CLOSED"


async def test_a_checkout_moves_on_from_an_unsure_account_whose_order_is_then_closed(
    redis_url: str,
    simulator: Simulator,
    backup: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    """A checkout is routed while `pending` (not `processing`): leaving an account whose create
    timed out and whose query failed must keep that status, and the worker closes the order
    left there like any other."""
    router = await router_for("priority", redis_url, simulator, backup, tmp_path, serving, http)
    await account_faults(http, simulator, {"timeout_rate": 1.0, "hang_ms": 1500})
    status, created = await router.create(method="checkout")
    assert status == 201, created
    async with http.get(created["action"]["url"], headers={"User-Agent": UA["wechat"]}) as resp:
        assert resp.status == 200
    routed = await router.payment(created["id"])
    assert (routed["status"], routed["channel"]) == ("pending", "wechat_backup"), routed
    stored = await router.app[RUNTIME].store.payments.find(created["id"])
    assert stored is not None and stored.abandoned == ("wechat_main",)
    await account_faults(http, simulator, {})
    router.clock.advance(6)
    while await router.worker.run_once():
        pass
    _, order = await sim_json(http, simulator, "GET", f"/sim/orders/{created['id']}")
    assert order["order"]["trade_state"] == "CLOSED"
    assert (await router.payment(created["id"]))["status"] == "pending"
