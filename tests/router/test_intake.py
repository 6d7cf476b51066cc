"""Create requests checked before routing (`router.payments.intake`), table-driven over stand-in
accounts: which field a refusal names, and which wallet a buyer's code sends the payment to."""

from __future__ import annotations

from typing import Any, cast

import pytest

from channels.base import Capabilities, Channel, Method, Wallet
from router.domain_errors import InvalidField
from router.models import CreatePaymentRequest
from router.payments.intake import check_create
from router.routing.decide import Candidate

OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
BUYER_ID = "2088102146225135"


class StandIn:
    def __init__(self, account: str, wallet: Wallet, methods: set[Method]) -> None:
        self.account = account
        self.capabilities = Capabilities(
            wallet=wallet, methods=frozenset(methods), currencies=frozenset({"CNY"})
        )


ALL = {"qr", "h5", "jsapi", "app", "barcode"}
ACCOUNTS = {
    s.account: Candidate(channel=cast(Channel, s), livemode=live)
    for s, live in [
        (StandIn("wechat_main", "wechat", cast(set[Method], ALL)), False),
        (StandIn("alipay_main", "alipay", cast(set[Method], ALL | {"web"})), False),
        (StandIn("unionpay_main", "unionpay", {"qr", "web", "h5", "app", "barcode"}), False),
        (StandIn("wechat_live", "wechat", {"qr"}), True),
    ]
}


def request(method: str, **fields: Any) -> CreatePaymentRequest:
    return CreatePaymentRequest.model_validate(
        {"amount": 100, "merchant_order_id": "A1", "description": "d", "method": method} | fields
    )


@pytest.mark.parametrize(
    ("method", "fields", "wallet"),
    [
        ("barcode", {"auth_code": "134567890123456789"}, "wechat"),
        ("barcode", {"auth_code": "286648488111111111"}, "alipay"),
        ("barcode", {"auth_code": "6225880137370011234"}, "unionpay"),
        ("barcode", {"auth_code": "9912345678901234", "wallet": "alipay"}, "alipay"),
        ("barcode", {"auth_code": "134567890123456789", "channel": "wechat_main"}, "wechat"),
        ("jsapi", {"payer_id": OPENID}, "wechat"),
        ("jsapi", {"payer_id": BUYER_ID}, "alipay"),
        ("jsapi", {"payer_id": BUYER_ID, "wallet": "alipay"}, "alipay"),
        ("qr", {}, None),
        ("h5", {"client_ip": "203.0.113.7", "wallet": "unionpay"}, "unionpay"),
    ],
)
def test_the_buyers_code_names_the_wallet(
    method: str, fields: dict[str, Any], wallet: str | None
) -> None:
    assert check_create(request(method, **fields), ACCOUNTS, livemode=False).wallet == wallet


@pytest.mark.parametrize(
    ("method", "fields", "livemode", "code", "param"),
    [
        ("jsapi", {"wallet": "unionpay"}, False, "method_unsupported", "method"),
        ("jsapi", {"channel": "unionpay_main"}, False, "method_unsupported", "method"),
        ("barcode", {}, True, "method_unsupported", "method"),
        ("jsapi", {}, False, "parameter_missing", "payer_id"),
        ("barcode", {}, False, "parameter_missing", "auth_code"),
        ("barcode", {"auth_code": "9912345678901234"}, False, "wallet_required", "wallet"),
        (
            "barcode",
            {"auth_code": "286648488111111111", "channel": "wechat_main"},
            False,
            "auth_code_wallet_mismatch",
            "auth_code",
        ),
        ("jsapi", {"payer_id": OPENID, "wallet": "alipay"}, False, "payer_id_invalid", "payer_id"),
        ("jsapi", {"payer_id": OPENID + "x"}, False, "payer_id_invalid", "payer_id"),
        ("jsapi", {"payer_id": "２０８８102146225135"}, False, "payer_id_invalid", "payer_id"),
    ],
)
def test_refusals_name_the_field_to_fix(
    method: str, fields: dict[str, Any], livemode: bool, code: str, param: str
) -> None:
    with pytest.raises(InvalidField) as caught:
        check_create(request(method, **fields), ACCOUNTS, livemode=livemode)
    assert (caught.value.code, caught.value.param) == (code, param)


@pytest.mark.parametrize(
    "fields",
    [
        {"channel": "nope", "payer_id": OPENID},
        {"channel": "wechat_live", "payer_id": OPENID},
    ],
)
def test_what_routing_refuses_is_left_to_routing(fields: dict[str, Any]) -> None:
    """An unknown channel or one of the other mode: routing names those problems."""
    assert check_create(request("jsapi", **fields), ACCOUNTS, livemode=False).payer_id == OPENID


def test_a_live_merchant_is_checked_against_live_accounts() -> None:
    with pytest.raises(InvalidField) as caught:
        check_create(request("jsapi", payer_id=BUYER_ID), ACCOUNTS, livemode=True)
    assert (caught.value.code, caught.value.param) == ("method_unsupported", "method")
