"""Requests that used to get a plausible but wrong answer: a refund that is not the one asked
for, a payment sent to a wallet that cannot take its buyer's code, a channel's "still
processing" read as "nothing was created".

All three simulators on loopback behind one router (the `multi` fixture).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.channels.harness import Harness
from tests.channels.harnesses.alipay import AUTH_CODE as ALIPAY_CODE
from tests.channels.harnesses.alipay import BUYER_ID
from tests.channels.harnesses.unionpay import AUTH_CODE as UNIONPAY_CODE
from tests.channels.harnesses.wechat import AUTH_CODE as WECHAT_CODE
from tests.channels.harnesses.wechat import OPENID
from tests.e2e.conftest import Router
from tests.e2e.test_channels import action_of

Harnesses = tuple[dict[str, Harness], dict[str, Path]]


async def paid_payment(multi: Router, harnesses: Harnesses, amount: int = 1999) -> str:
    _, created = await multi.create(wallet="wechat", amount=amount)
    await harnesses[0]["wechat"].pay(action_of(created))
    return str((await multi.wait_status(created["id"], "succeeded"))["id"])


async def refund(multi: Router, pay_id: str, **body: Any) -> tuple[int, dict[str, Any]]:
    status, data, _ = await multi.request("POST", f"/v1/payments/{pay_id}/refunds", json=body)
    return status, data


async def test_a_reused_merchant_refund_id_must_ask_for_the_same_refund(
    multi: Router, harnesses: Harnesses
) -> None:
    pay_id = await paid_payment(multi, harnesses)
    status, first = await refund(multi, pay_id, amount=500, merchant_refund_id="R-1")
    assert status == 201, first
    status, again = await refund(multi, pay_id, amount=500, merchant_refund_id="R-1")
    assert (status, again["id"]) == (200, first["id"])
    for other in ({"amount": 700}, {}, {"amount": 500, "reason": "damaged"}):
        status, err = await refund(multi, pay_id, merchant_refund_id="R-1", **other)
        assert status == 409, (other, err)
        assert err["error"]["code"] == "merchant_refund_id_reused"
        assert err["error"]["param"] == "merchant_refund_id"
        assert err["error"]["refund_id"] == first["id"]
    # "All that is left" is the same request as long as the refund took all that was left.
    status, rest = await refund(multi, pay_id, merchant_refund_id="R-2", reason="the rest")
    assert (status, rest["amount"]) == (201, 1499), rest
    for same in ({}, {"amount": 1499}):
        status, again = await refund(multi, pay_id, merchant_refund_id="R-2", reason="the rest")
        assert (status, again["id"]) == (200, rest["id"]), same
    _, page, _ = await multi.request("GET", f"/v1/payments/{pay_id}/refunds")
    assert sorted(r["amount"] for r in page["data"]) == [500, 1499]


@pytest.mark.parametrize(
    ("code", "wallet"),
    [(WECHAT_CODE, "wechat"), (ALIPAY_CODE, "alipay"), (UNIONPAY_CODE, "unionpay")],
)
async def test_a_payment_code_goes_to_its_own_wallet(multi: Router, code: str, wallet: str) -> None:
    status, created = await multi.create(method="barcode", auth_code=code)
    assert status in (200, 201), created
    assert (created["wallet"], created["channel"]) == (wallet, f"{wallet}_main")


@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [
        ({"auth_code": "9912345678901234"}, "wallet", "wallet_required"),
        ({"auth_code": ALIPAY_CODE, "wallet": "wechat"}, "auth_code", "auth_code_wallet_mismatch"),
        ({"auth_code": WECHAT_CODE, "channel": "unionpay_main"}, "auth_code", None),
    ],
)
async def test_a_payment_code_of_no_or_another_wallet_is_400(
    multi: Router, fields: dict[str, str], param: str, code: str | None
) -> None:
    status, err = await multi.create(method="barcode", **fields)
    assert status == 400, err
    assert err["error"]["param"] == param
    assert code is None or err["error"]["code"] == code
    _, page, _ = await multi.request("GET", "/v1/payments")
    assert page["data"] == []


@pytest.mark.parametrize(("payer_id", "wallet"), [(OPENID, "wechat"), (BUYER_ID, "alipay")])
async def test_a_jsapi_payer_id_goes_to_its_own_wallet(
    multi: Router, payer_id: str, wallet: str
) -> None:
    status, created = await multi.create(method="jsapi", payer_id=payer_id)
    assert status == 201, created
    assert created["channel"] == f"{wallet}_main"


@pytest.mark.parametrize(
    "fields",
    [
        {"wallet": "alipay", "payer_id": OPENID},
        {"wallet": "alipay", "payer_id": "2088x"},
        {"wallet": "wechat", "payer_id": BUYER_ID},
        {"channel": "alipay_main", "payer_id": "buyer@example.com"},
        {"payer_id": "x"},
    ],
)
async def test_a_payer_id_of_no_or_another_wallet_is_400_before_any_channel_call(
    multi: Router, fields: dict[str, str]
) -> None:
    status, err = await multi.create(method="jsapi", **fields)
    assert status == 400, err
    assert (err["error"]["code"], err["error"]["param"]) == ("payer_id_invalid", "payer_id")
    _, page, _ = await multi.request("GET", "/v1/payments")
    assert page["data"] == []


@pytest.mark.parametrize(
    "fields",
    [
        {"wallet": "unionpay"},
        {"channel": "unionpay_main"},
        {"wallet": "unionpay", "payer_id": OPENID},
    ],
)
async def test_a_method_the_wallet_lacks_is_refused_naming_method(
    multi: Router, fields: dict[str, str]
) -> None:
    status, err = await multi.create(method="jsapi", **fields)
    assert status == 400, err
    assert (err["error"]["code"], err["error"]["param"]) == ("method_unsupported", "method")


@pytest.mark.parametrize(("method", "amount"), [("qr", 303), ("app", 304), ("qr", 305)])
async def test_unionpay_still_processing_is_never_nothing_created(
    multi: Router, harnesses: Harnesses, method: str, amount: int
) -> None:
    status, err = await multi.create(wallet="unionpay", method=method, amount=amount)
    assert status == 503, err
    assert "nothing was created" not in err["error"]["message"]
    assert "any order unionpay_main may have opened was closed there" in err["error"]["message"]
    payment = await multi.payment(err["error"]["payment_id"])
    assert payment["status"] == "failed"
    assert payment["failure"]["code"] == "channel_outcome_unknown"
    attempt = payment["routing"]["attempts"][0]
    assert (attempt["outcome"], attempt["code"]) == ("unknown", f"0{amount % 100}")
    # The order UnionPay had opened exists, and can no longer be paid.
    sim = harnesses[0]["unionpay"].sim_url
    order_id = payment["id"].replace("_", "", 1)
    async with multi.http.get(f"{sim}/sim/orders/{order_id}") as resp:
        assert resp.status == 200
        assert (await resp.json())["state"] == "voided"
