"""Every channel family through the router: WeChat Pay, Alipay and UnionPay simulators on
loopback, one routing file naming the three accounts, real Redis.

The simulators come from the channel contract suite's harnesses (tests/channels/harnesses), so
the buyer pays exactly as that suite's buyer does (fixtures `harnesses` and `multi`, in
conftest).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from channels.base import METHODS, Action
from tests.channels.harness import Harness
from tests.e2e.conftest import WALLETS, Router, eventually

ACTIONS = {
    "qr": {"qr_code"},
    "web": {"redirect", "form_post"},
    "h5": {"redirect", "form_post"},
    "app": {"app_params"},
    "jsapi": {"app_params"},
}


def action_of(payment: dict[str, Any]) -> Action:
    raw = payment["action"]
    return Action(
        type=raw["type"],
        qr_code=raw.get("qr_code"),
        url=raw.get("url"),
        fields=raw.get("fields"),
        params=raw.get("params"),
    )


@pytest.mark.parametrize("wallet", WALLETS)
async def test_pay_and_refund_through_the_router(
    multi: Router, harnesses: tuple[dict[str, Harness], dict[str, Path]], wallet: str
) -> None:
    h = harnesses[0][wallet]
    status, created = await multi.create(wallet=wallet, amount=1999)
    assert status == 201, created
    assert created["channel"] == f"{wallet}_main"
    assert created["action"]["type"] == "qr_code"
    await h.pay(action_of(created))
    paid = await multi.wait_status(created["id"], "succeeded")
    assert paid["channel_trade_no"]

    first_status, first, _ = await multi.request(
        "POST",
        f"/v1/payments/{paid['id']}/refunds",
        json={"amount": 500, "merchant_refund_id": f"R-{wallet}-1"},
    )
    assert first_status == 201, first
    again_status, again, _ = await multi.request(
        "POST",
        f"/v1/payments/{paid['id']}/refunds",
        json={"amount": 500, "merchant_refund_id": f"R-{wallet}-1"},
    )
    assert again_status == 200
    assert again["id"] == first["id"]
    rest_status, rest, _ = await multi.request(
        "POST", f"/v1/payments/{paid['id']}/refunds", json={"reason": "the rest"}
    )
    assert rest_status == 201, rest
    assert rest["amount"] == 1499
    over_status, over, _ = await multi.request(
        "POST", f"/v1/payments/{paid['id']}/refunds", json={"amount": 1}
    )
    assert over_status == 400
    assert over["error"]["param"] == "amount"

    async def refunded() -> dict[str, Any] | None:
        payment = await multi.payment(paid["id"])
        return payment if payment["amount_refunded"] == 1999 else None

    await eventually(refunded, timeout=20)
    _, listed, _ = await multi.request("GET", f"/v1/payments/{paid['id']}/refunds")
    assert {r["status"] for r in listed["data"]} == {"succeeded"}
    assert sum(r["amount"] for r in listed["data"]) == 1999


@pytest.mark.parametrize("wallet", WALLETS)
async def test_every_method_gives_the_right_action(
    multi: Router, harnesses: tuple[dict[str, Harness], dict[str, Path]], wallet: str
) -> None:
    h = harnesses[0][wallet]
    methods = sorted(h.channel.capabilities.methods)
    for method in methods:
        extra: dict[str, Any] = {}
        if method == "jsapi":
            extra["payer_id"] = h.payer_id
        if method == "h5":
            extra["client_ip"] = "203.0.113.7"
        if method == "barcode":
            extra["auth_code"] = h.auth_code
        status, created = await multi.create(wallet=wallet, method=method, **extra)
        assert status == 201, (method, created)
        if method == "barcode":
            assert created["status"] in ("pending", "succeeded")
        else:
            assert created["action"]["type"] in ACTIONS[method], (method, created["action"])
    for missing in sorted(set(METHODS) - set(methods)):
        needs = {
            "jsapi": {"payer_id": "x"},
            "barcode": {"auth_code": "134567890123456789"},
            "h5": {"client_ip": "203.0.113.7"},
        }.get(missing, {})
        status, err = await multi.create(wallet=wallet, method=missing, **needs)
        assert status == 400, (missing, err)
        assert err["error"]["param"] == "method"


async def test_concurrent_refunds_never_exceed_the_payment(
    multi: Router, harnesses: tuple[dict[str, Harness], dict[str, Path]]
) -> None:
    h = harnesses[0]["wechat"]
    _, created = await multi.create(wallet="wechat", amount=1999)
    await h.pay(action_of(created))
    await multi.wait_status(created["id"], "succeeded")
    results = await asyncio.gather(
        *(
            multi.request("POST", f"/v1/payments/{created['id']}/refunds", json={"amount": 300})
            for _ in range(10)
        )
    )
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [201] * 6 + [400] * 4


async def test_refunding_an_unpaid_payment_is_refused(multi: Router) -> None:
    _, created = await multi.create(wallet="alipay")
    status, err, _ = await multi.request("POST", f"/v1/payments/{created['id']}/refunds", json={})
    assert status == 409
    assert err["error"]["code"] == "payment_not_refundable"
