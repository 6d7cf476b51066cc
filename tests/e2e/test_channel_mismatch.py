"""A channel that reports another amount than ours is never believed, and never a 500.

The simulators' `misreport_amount` fault makes their answers (and notifications) say each order
or refund is for one fen more. On every API path that applies a channel's answer, the router
answers `502 channel_error` / `channel_mismatch` naming the payment (and refund), leaves it as it
was for review, counts it in `payrouter_payment_conflicts_total{account}` and logs one line
without a traceback: a barcode paid at once (every wallet), a create whose outcome was unknown
and turned out paid, a close the channel refuses because the buyer paid, a refund.

Notifications are dropped (`drop_notifications`) so that only the API path under test meets
the misreported amount. Real simulators and router on loopback, real Redis.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.channels.harness import Harness
from tests.e2e.conftest import (
    FAST_WORKERS,
    WALLETS,
    Router,
    Simulator,
    eventually,
    routing,
    sim_json,
    start_router,
)
from tests.e2e.test_webhooks_faults import metric

Harnesses = tuple[dict[str, Harness], dict[str, Path]]
WRONG = {"misreport_amount": 1, "drop_notifications": 100}


@pytest.fixture
async def wallets(
    redis_url: str,
    harnesses: Harnesses,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> Router:
    """A router with one account per wallet, its worker stopped (it would meet the same
    answers again, and count them)."""
    found, folders = harnesses
    placeholder = Simulator(url="", sandbox=None)  # type: ignore[arg-type]
    config = routing(found, folders)
    return await start_router(redis_url, placeholder, tmp_path, serving, http, config_text=config)


def mismatch(status: int, body: dict[str, Any], **named: str) -> dict[str, Any]:
    """The error of a `502 channel_mismatch` answer, checked to name `named` ids."""
    assert status == 502, body
    error: dict[str, Any] = body["error"]
    assert (error["type"], error["code"]) == ("channel_error", "channel_mismatch"), error
    for name, value in named.items():
        assert error[name] == value, error
    assert "held as it was for review" in error["message"]
    return error


def logged_once(caplog: pytest.LogCaptureFixture, *fragments: str) -> None:
    """One error line says what the channel reported; nothing else is an error or a traceback."""
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert errors[0].name == "payrouter.mismatch" and not errors[0].exc_info
    for fragment in fragments:
        assert fragment in errors[0].getMessage(), errors[0].getMessage()


async def conflicts(http: aiohttp.ClientSession, router: Router, account: str) -> float:
    return await metric(http, router, f'payrouter_payment_conflicts_total{{account="{account}"}}')


@pytest.mark.parametrize("wallet", WALLETS)
async def test_a_barcode_paid_at_once_for_another_amount(
    wallets: Router,
    harnesses: Harnesses,
    wallet: str,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = harnesses[0][wallet]
    await h.set_faults(WRONG)
    body = {
        "amount": 1999,
        "description": "x",
        "method": "barcode",
        "auth_code": h.auth_code,
        "merchant_order_id": f"BAR-{wallet}",
    }
    key = {"Idempotency-Key": f"bar-{wallet}"}
    status, answer, _ = await wallets.request("POST", "/v1/payments", json=body, headers=key)
    pay_id = mismatch(status, answer)["payment_id"]
    account = f"{wallet}_main"
    assert (
        f"{account} reports 2000 CNY for payment {pay_id}, which is 1999 CNY"
        in (answer["error"]["message"])
    )
    assert (await wallets.payment(pay_id))["status"] == "processing"
    assert await conflicts(http, wallets, account) == 1
    logged_once(caplog, pay_id, "2000 CNY via create")

    # The retry under the same key asks the channel again and hears the same: still held.
    status, again, _ = await wallets.request("POST", "/v1/payments", json=body, headers=key)
    mismatch(status, again, payment_id=pay_id)
    assert (await wallets.payment(pay_id))["status"] == "processing"
    assert await conflicts(http, wallets, account) == 2


async def test_an_unknown_create_found_paid_for_another_amount(
    router: Router,
    simulator: Simulator,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The create's answer never comes (the simulator hangs past the 3 s timeout); asked, the
    channel says the order is paid, for another amount."""
    hang = {"timeout_rate": 1.0, "hang_ms": 4000, "only": ["create"]}
    await sim_json(http, simulator, "PUT", "/sim/faults", WRONG | hang)
    status, answer = await router.create(method="barcode", auth_code="134567890123456789")
    pay_id = mismatch(status, answer)["payment_id"]
    paid = await router.payment(pay_id)
    assert paid["status"] == "processing"
    assert [a["outcome"] for a in paid["routing"]["attempts"]] == ["unknown"]
    assert await conflicts(http, router, "wechat_main") == 1
    logged_once(caplog, pay_id, "via create")


async def test_a_close_refused_because_paid_for_another_amount(
    router: Router,
    simulator: Simulator,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await sim_json(http, simulator, "PUT", "/sim/faults", WRONG)
    _, created = await router.create()
    code = {"code": created["action"]["qr_code"]}
    assert (await sim_json(http, simulator, "POST", "/sim/buyer/pay", code))[0] == 200
    status, answer, _ = await router.request("POST", f"/v1/payments/{created['id']}/close")
    mismatch(status, answer, payment_id=created["id"])
    assert (await router.payment(created["id"]))["status"] == "pending"
    assert await conflicts(http, router, "wechat_main") == 1
    logged_once(caplog, created["id"], "2000 CNY via close")


async def test_a_refund_answered_for_another_amount(
    router: Router,
    simulator: Simulator,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, created = await router.create()
    code = {"code": created["action"]["qr_code"]}
    await sim_json(http, simulator, "POST", "/sim/buyer/pay", code)
    await router.wait_status(created["id"], "succeeded")
    await sim_json(http, simulator, "PUT", "/sim/faults", WRONG)
    status, answer, _ = await router.request(
        "POST", f"/v1/payments/{created['id']}/refunds", json={"amount": 500}
    )
    error = mismatch(status, answer, payment_id=created["id"])
    assert "reports 501 for refund" in error["message"]
    _, refund, _ = await router.request("GET", f"/v1/refunds/{error['refund_id']}")
    assert refund["status"] == "pending"
    assert await conflicts(http, router, "wechat_main") == 1
    logged_once(caplog, error["refund_id"], "reports 501 via create")


async def test_the_notification_and_the_worker_refuse_it_too(
    router: Router,
    simulator: Simulator,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await sim_json(http, simulator, "PUT", "/sim/faults", {"misreport_amount": -1000})
    _, created = await router.create()
    code = {"code": created["action"]["qr_code"]}
    await sim_json(http, simulator, "POST", "/sim/buyer/pay", code)
    refused = (
        'payrouter_channel_notifications_total{account="wechat_main",outcome="amount_mismatch"}'
    )

    async def notified() -> bool | None:
        return True if await metric(http, router, refused) >= 1 else None

    await eventually(notified)
    router.clock.advance(FAST_WORKERS.requery_after_s + 0.1)
    assert await router.worker.run_once() == 1
    mismatched = 'payrouter_requery_checks_total{outcome="mismatch"}'
    assert await metric(http, router, mismatched) == 1
    assert (await router.payment(created["id"]))["status"] == "pending"
    assert await conflicts(http, router, "wechat_main") >= 2
    assert not [r for r in caplog.records if r.exc_info]
    assert "reports 999 CNY via requery" in caplog.text
