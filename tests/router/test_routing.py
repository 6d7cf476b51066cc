"""Channel choice is pure logic over capabilities: tested with stand-in channels."""

from __future__ import annotations

from typing import Any, cast

import pytest

from channels.base import Capabilities, Channel, Method, Wallet
from router.errors import InvalidRequest
from router.routing import Candidate, choose


class StandIn:
    """Only what `choose` reads: a name and capabilities."""

    def __init__(self, account: str, wallet: Wallet, methods: set[Method]) -> None:
        self.account = account
        self.capabilities = Capabilities(
            wallet=wallet, methods=frozenset(methods), currencies=frozenset({"CNY"})
        )


def accounts(livemode: bool = False) -> dict[str, Candidate]:
    stand_ins = [
        StandIn("wechat_main", "wechat", {"qr", "h5", "jsapi", "app", "barcode"}),
        StandIn("alipay_main", "alipay", {"qr", "web", "h5", "jsapi", "app", "barcode"}),
        StandIn("unionpay_main", "unionpay", {"qr", "web", "h5", "app", "barcode"}),
    ]
    return {s.account: Candidate(channel=cast(Channel, s), livemode=livemode) for s in stand_ins}


def pick(**kwargs: Any) -> list[str]:
    args: dict[str, Any] = {
        "method": "qr",
        "currency": "CNY",
        "wallet": None,
        "pinned": None,
        "livemode": False,
    } | kwargs
    table = args.pop("table", None) or accounts()
    return [c.account for c in choose(table, **args).candidates]


def test_wallet_and_method_filter_in_file_order() -> None:
    assert pick() == ["wechat_main", "alipay_main", "unionpay_main"]
    assert pick(method="web") == ["alipay_main", "unionpay_main"]
    assert pick(method="jsapi", wallet="alipay") == ["alipay_main"]
    assert pick(pinned="unionpay_main", method="app") == ["unionpay_main"]


@pytest.mark.parametrize(
    ("kwargs", "param", "code"),
    [
        ({"method": "web", "wallet": "wechat"}, "method", "method_unsupported"),
        ({"currency": "USD"}, "currency", "currency_unsupported"),
        ({"pinned": "nope"}, "channel", "unknown_channel"),
        ({"pinned": "wechat_main", "wallet": "alipay"}, "wallet", "wallet_mismatch"),
        ({"pinned": "unionpay_main", "method": "jsapi"}, "method", "method_unsupported"),
        ({"pinned": "wechat_main", "currency": "USD"}, "currency", "currency_unsupported"),
        ({"pinned": "wechat_main", "livemode": True}, "channel", "channel_mode_mismatch"),
        ({"livemode": True}, None, "no_channel_available"),
    ],
)
def test_refusals_name_the_field(kwargs: dict[str, Any], param: str | None, code: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        pick(**kwargs)
    assert caught.value.param == param
    assert caught.value.code == code
