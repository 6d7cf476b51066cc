"""A payment's whole life through the router and the WeChat Pay simulator, on loopback."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from router.api.middleware import RUNTIME
from router.app import WORKER, build_app
from router.settings import ConfigurationError, Settings
from tests.e2e.conftest import (
    FAST_WORKERS,
    Router,
    Simulator,
    eventually,
    sim_json,
    start_router,
)


async def test_create_pay_notify_succeeded(
    router: Router, simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    status, created = await router.create(amount=1999, merchant_order_id="A1001")
    assert status == 201, created
    assert created["status"] == "pending"
    assert created["channel"] == "wechat_main" and created["wallet"] == "wechat"
    assert created["action"]["type"] == "qr_code"
    assert created["action"]["qr_code"].startswith("weixin://wxpay/bizpayurl")
    assert created["routing"]["attempts"][0]["outcome"] == "created"
    assert created["amount"] == 1999 and created["amount_refunded"] == 0

    code, _ = await sim_json(
        http, simulator, "POST", "/sim/buyer/pay", {"code": created["action"]["qr_code"]}
    )
    assert code == 200
    paid = await router.wait_status(created["id"], "succeeded")
    assert paid["channel_trade_no"]
    assert paid["paid_at"] is not None
    # The handler counts the notification after its write, which the GET above may see first.
    accepted = router.app[RUNTIME].metrics.notifications.labels("wechat_main", "accepted")
    await eventually(lambda: _ready(accepted._value.get() >= 1))


async def test_other_methods_give_the_right_action(router: Router) -> None:
    status, h5 = await router.create(method="h5", client_ip="203.0.113.9")
    assert status == 201, h5
    assert h5["action"]["type"] == "redirect" and h5["action"]["url"].startswith("http")
    status, jsapi = await router.create(method="jsapi", payer_id="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")
    assert status == 201, jsapi
    params = jsapi["action"]["params"]
    assert params["package"].startswith("prepay_id=") and params["signType"] == "RSA"
    status, app = await router.create(method="app")
    assert status == 201, app
    assert app["action"]["params"]["package"] == "Sign=WXPay"


async def test_duplicate_notifications_apply_once(
    router: Router, simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    await sim_json(http, simulator, "PUT", "/sim/faults", {"duplicate_notifications": 3})
    _, created = await router.create()
    await sim_json(
        http, simulator, "POST", "/sim/buyer/pay", {"code": created["action"]["qr_code"]}
    )
    await router.wait_status(created["id"], "succeeded")
    metrics = router.app[RUNTIME].metrics

    def accepted() -> float:
        return float(metrics.notifications.labels("wechat_main", "accepted")._value.get())

    await eventually(lambda: _ready(accepted() >= 4))
    changes = metrics.status_changes.labels("succeeded", "notification")._value.get()
    assert changes == 1


async def _ready(condition: bool) -> bool | None:
    return True if condition else None


async def test_lost_notification_is_recovered_by_requery(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    live = await start_router(redis_url, simulator, tmp_path, serving, http, run_worker=True)
    await sim_json(http, simulator, "PUT", "/sim/faults", {"drop_notifications": 100})
    _, created = await live.create()
    await sim_json(
        http, simulator, "POST", "/sim/buyer/pay", {"code": created["action"]["qr_code"]}
    )
    # The worker counts the change just after writing it, so the count is what to await: a
    # GET may see the new status before the worker has resumed to count it.
    requeried = live.app[RUNTIME].metrics.status_changes.labels("succeeded", "requery")
    await eventually(lambda: _ready(requeried._value.get() >= 1))
    paid = await live.payment(created["id"])
    assert paid["status"] == "succeeded" and paid["channel_trade_no"]
    assert requeried._value.get() == 1


async def test_expired_payment_is_closed_at_the_channel_too(
    router: Router, simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    _, created = await router.create(expires_in=60)
    router.clock.advance(61)
    await _drain(router)
    closed = await router.payment(created["id"])
    assert closed["status"] == "closed"
    _, order = await sim_json(http, simulator, "GET", f"/sim/orders/{created['id']}")
    assert order["order"]["trade_state"] == "CLOSED"
    # The buyer can no longer pay it.
    code, _ = await sim_json(
        http, simulator, "POST", "/sim/buyer/pay", {"code": created["action"]["qr_code"]}
    )
    assert code >= 400


async def _drain(router: Router) -> None:
    """Run the worker until nothing is due now."""
    for _ in range(20):
        if await router.worker.run_once() == 0:
            return
    raise AssertionError("the worker never ran dry")


async def test_close_endpoint(
    router: Router, simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    _, created = await router.create()
    status, closed, _ = await router.request("POST", f"/v1/payments/{created['id']}/close")
    assert status == 200 and closed["status"] == "closed"
    status, again, _ = await router.request("POST", f"/v1/payments/{created['id']}/close")
    assert status == 200 and again["status"] == "closed"
    _, order = await sim_json(http, simulator, "GET", f"/sim/orders/{created['id']}")
    assert order["order"]["trade_state"] == "CLOSED"

    _, paid = await router.create()
    await sim_json(http, simulator, "POST", "/sim/buyer/pay", {"code": paid["action"]["qr_code"]})
    await router.wait_status(paid["id"], "succeeded")
    status, err, _ = await router.request("POST", f"/v1/payments/{paid['id']}/close")
    assert status == 409 and err["error"]["code"] == "payment_unexpected_state"


async def test_close_after_buyer_paid_follows_the_channel(
    router: Router, simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    await sim_json(http, simulator, "PUT", "/sim/faults", {"drop_notifications": 100})
    _, created = await router.create()
    await sim_json(
        http, simulator, "POST", "/sim/buyer/pay", {"code": created["action"]["qr_code"]}
    )
    status, err, _ = await router.request("POST", f"/v1/payments/{created['id']}/close")
    assert status == 409, err
    assert (await router.payment(created["id"]))["status"] == "succeeded"


async def test_channel_outage_fails_cleanly_and_frees_the_order_id(
    router: Router, simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    await sim_json(http, simulator, "PUT", "/sim/faults", {"outage": True})
    status, err = await router.create(merchant_order_id="OUT-1")
    assert status == 503, err
    assert err["error"]["type"] == "channel_error"
    failed = await router.payment(err["error"]["payment_id"])
    assert failed["status"] == "failed"
    assert failed["routing"]["attempts"][0]["outcome"] == "unavailable"
    await sim_json(http, simulator, "PUT", "/sim/faults", {})
    status, ok = await router.create(merchant_order_id="OUT-1")
    assert status == 201, ok


async def test_unknown_outcome_is_resolved_by_the_worker(
    router: Router, simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    await sim_json(http, simulator, "PUT", "/sim/faults", {"timeout_rate": 1.0, "hang_ms": 4000})
    status, err = await router.create(merchant_order_id="SLOW-1")
    assert status == 502, err
    pay_id = err["error"]["payment_id"]
    assert (await router.payment(pay_id))["status"] == "processing"
    # While it is unresolved, the merchant_order_id stays taken.
    status, dup = await router.create(merchant_order_id="SLOW-1")
    assert status == 409 and dup["error"]["payment_id"] == pay_id
    await sim_json(http, simulator, "PUT", "/sim/faults", {})
    router.clock.advance(FAST_WORKERS.processing_grace_s + 1)
    await _drain(router)
    failed = await router.payment(pay_id)
    assert failed["status"] == "failed"
    assert failed["failure"]["code"] == "channel_outcome_unknown"
    _, order = await sim_json(http, simulator, "GET", f"/sim/orders/{pay_id}")
    assert order["order"]["trade_state"] == "CLOSED"


async def test_two_routers_share_the_work(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    first = await start_router(redis_url, simulator, tmp_path, serving, http)
    second = await start_router(
        redis_url,
        simulator,
        tmp_path,
        serving,
        http,
        merchant=(first.merchant_id, first.key_id, first.secret),
    )
    await sim_json(http, simulator, "PUT", "/sim/faults", {"drop_notifications": 100})
    created = [(await first.create())[1] for _ in range(6)]
    for item in created:
        await sim_json(
            http, simulator, "POST", "/sim/buyer/pay", {"code": item["action"]["qr_code"]}
        )
    for r in (first, second):
        r.clock.advance(FAST_WORKERS.requery_after_s + 0.1)
    await asyncio.gather(first.worker.run_once(), second.worker.run_once())
    for item in created:
        assert (await second.payment(item["id"]))["status"] == "succeeded"
    total = sum(
        r.app[RUNTIME].metrics.status_changes.labels("succeeded", "requery")._value.get()
        for r in (first, second)
    )
    assert total == len(created)
    assert first.app[WORKER] is not second.app[WORKER]


async def test_an_entry_a_dead_worker_claimed_is_retaken_after_its_lease(
    router: Router, simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    """The lease is as short as the routing file's timeouts allow (3 calls of 3 s, and 5 s):
    a worker killed mid-settle holds its entry 14 s, not a minute."""
    await sim_json(http, simulator, "PUT", "/sim/faults", {"drop_notifications": 100})
    _, created = await router.create()
    await sim_json(
        http, simulator, "POST", "/sim/buyer/pay", {"code": created["action"]["qr_code"]}
    )
    router.clock.advance(FAST_WORKERS.requery_after_s + 0.1)
    lease = router.worker.lease_s()
    assert lease == 3 * 3.0 + 5.0
    # A worker claims the entry and dies before it settles anything.
    schedule = router.app[RUNTIME].store.schedule
    assert await schedule.claim(router.clock.now_ms(), int(lease * 1000), 10)
    router.clock.advance(lease - 1)
    assert await router.worker.run_once() == 0
    router.clock.advance(1.1)
    assert await router.worker.run_once() == 1
    assert (await router.payment(created["id"]))["status"] == "succeeded"


async def test_the_worker_lease_is_settable_but_never_too_short(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    longer = replace(FAST_WORKERS, lease_s=20.0)
    r = await start_router(redis_url, simulator, tmp_path, serving, http, workers=longer)
    assert r.worker.lease_s() == 20.0
    shorter = replace(FAST_WORKERS, lease_s=13.0)
    settings = Settings(
        redis_url=redis_url,
        routing_path=tmp_path / "routing.yaml",
        sandbox_dir=tmp_path / "sandbox",
        workers=shorter,
    )
    with pytest.raises(ConfigurationError, match="at least 14 seconds"):
        await build_app(settings)
