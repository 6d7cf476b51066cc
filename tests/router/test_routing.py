"""Routing decisions, table-driven: rules, strategies, capabilities and breakers.

Which account a payment goes to is logic over the routing file, the accounts' declared
capabilities and the breakers' shared state; stand-in channels carry the capabilities and the
embedded store holds the breakers.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from channels.base import Capabilities, Channel, Method, Wallet
from router.api.errors import api_error
from router.clock import FrozenClock
from router.domain_errors import ChannelDown, InvalidField
from router.routing.config import RoutingConfig, load_config
from router.routing.decide import Candidate, decide
from router.routing.health import Breakers
from router.routing.rules import RouteRequest
from router.store import Store

ACCOUNTS = """\
version: 1
accounts:
  wechat_main: {type: wechat, base_url: "http://127.0.0.1:1", credentials: {file: x.json}}
  wechat_backup: {type: wechat, base_url: "http://127.0.0.1:2", credentials: {file: x.json}}
  alipay_main: {type: wechat, base_url: "http://127.0.0.1:3", credentials: {file: x.json}}
"""
RULES = """\
rules:
  - name: big-orders
    match: {amount: {gte: 100000}, currency: [CNY]}
    strategy: priority
    accounts: [wechat_backup, wechat_main]
  - name: vip
    match: {metadata: {tier: vip}}
    strategy: weighted
    accounts: [wechat_main, wechat_backup]
    weights: {wechat_main: 3, wechat_backup: 1}
  - name: night
    match: {time: {from: "22:00", to: "06:00", tz: Asia/Shanghai}}
    accounts: [wechat_backup]
  - name: by-health
    match: {method: [h5]}
    strategy: score
    exploration: 0.0
    accounts: [wechat_main, wechat_backup]
"""
NOON_SHANGHAI = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)


class StandIn:
    """Only what routing reads: a name and capabilities."""

    def __init__(self, account: str, wallet: Wallet, methods: set[Method]) -> None:
        self.account = account
        self.capabilities = Capabilities(
            wallet=wallet, methods=frozenset(methods), currencies=frozenset({"CNY"})
        )


def table() -> dict[str, Candidate]:
    stand_ins = [
        StandIn("wechat_main", "wechat", {"qr", "h5", "jsapi", "app", "barcode"}),
        StandIn("wechat_backup", "wechat", {"qr", "h5"}),
        StandIn("alipay_main", "alipay", {"qr", "web", "h5", "jsapi", "app", "barcode"}),
    ]
    return {s.account: Candidate(channel=cast(Channel, s), livemode=False) for s in stand_ins}


@pytest.fixture
def config(tmp_path: Path) -> RoutingConfig:
    path = tmp_path / "routing.yaml"
    path.write_text(ACCOUNTS + RULES)
    return load_config(path).config


@pytest.fixture
def breakers(store: Store, clock: FrozenClock, config: RoutingConfig) -> Breakers:
    return Breakers(store.breakers, clock, lambda: (config.health, config.breaker))


async def route(
    config: RoutingConfig,
    breakers: Breakers,
    *,
    pinned: str | None = None,
    livemode: bool = False,
    **fields: Any,
) -> tuple[str, list[str]]:
    req: dict[str, Any] = {
        "payment_id": "pay_test0000000000000001",
        "method": "qr",
        "currency": "CNY",
        "amount": 100,
        "wallet": None,
        "merchant_id": "mch_x",
        "metadata": {},
        "now": NOON_SHANGHAI,
    } | fields
    decision = await decide(
        config, table(), breakers, RouteRequest(**req), pinned=pinned, livemode=livemode
    )
    return decision.rule, [c.account for c in decision.candidates]


@pytest.mark.parametrize(
    ("fields", "rule", "accounts"),
    [
        ({}, "default", ["wechat_main", "wechat_backup", "alipay_main"]),
        ({"wallet": "alipay"}, "default", ["alipay_main"]),
        ({"method": "web"}, "default", ["alipay_main"]),
        ({"amount": 100000}, "big-orders", ["wechat_backup", "wechat_main"]),
        ({"amount": 100000, "method": "app"}, "big-orders", ["wechat_main"]),
        ({"now": datetime(2026, 11, 22, 15, 0, tzinfo=UTC)}, "night", ["wechat_backup"]),
        ({"pinned": "alipay_main"}, "pinned", ["alipay_main"]),
    ],
)
async def test_first_matching_rule_decides(
    config: RoutingConfig,
    breakers: Breakers,
    fields: dict[str, Any],
    rule: str,
    accounts: list[str],
) -> None:
    request = dict(fields)
    pinned = request.pop("pinned", None)
    assert await route(config, breakers, pinned=pinned, **request) == (rule, accounts)


async def test_weighted_split_is_deterministic_and_proportional(
    config: RoutingConfig, breakers: Breakers
) -> None:
    firsts: Counter[str] = Counter()
    for i in range(400):
        pay_id = f"pay_weighted{i:012d}"
        rule, order = await route(config, breakers, payment_id=pay_id, metadata={"tier": "vip"})
        assert rule == "vip"
        assert (
            order == (await route(config, breakers, payment_id=pay_id, metadata={"tier": "vip"}))[1]
        )
        firsts[order[0]] += 1
    assert 0.65 < firsts["wechat_main"] / 400 < 0.85


async def test_score_prefers_the_healthier_account(
    config: RoutingConfig, breakers: Breakers
) -> None:
    for i in range(12):  # a third of wechat_main's calls fail: unhealthier, not tripped
        await breakers.record("wechat_main", "fail" if i % 3 == 0 else "ok", 100)
        await breakers.record("wechat_backup", "ok", 100)
    await breakers.flush()
    assert await route(config, breakers, method="h5") == (
        "by-health",
        ["wechat_backup", "wechat_main"],
    )


async def test_open_breakers_are_skipped(config: RoutingConfig, breakers: Breakers) -> None:
    await breakers.force("wechat_main", "open")
    assert (await route(config, breakers))[1] == ["wechat_backup", "alipay_main"]
    await breakers.force("wechat_backup", "open")
    await breakers.force("alipay_main", "open")
    with pytest.raises(ChannelDown) as caught:
        await route(config, breakers)
    assert api_error(caught.value).status == 503


@pytest.mark.parametrize(
    ("kwargs", "param", "code"),
    [
        ({"method": "web", "wallet": "wechat"}, "method", "method_unsupported"),
        ({"currency": "USD"}, "currency", "currency_unsupported"),
        ({"pinned": "nope"}, "channel", "unknown_channel"),
        ({"pinned": "wechat_main", "wallet": "alipay"}, "wallet", "wallet_mismatch"),
        ({"pinned": "wechat_backup", "method": "jsapi"}, "method", "method_unsupported"),
        ({"pinned": "wechat_main", "currency": "USD"}, "currency", "currency_unsupported"),
        ({"pinned": "wechat_main", "livemode": True}, "channel", "channel_mode_mismatch"),
        ({"livemode": True}, None, "no_channel_available"),
        ({"amount": 100000, "method": "web"}, "method", "method_unsupported"),
    ],
)
async def test_refusals_name_the_field(
    config: RoutingConfig,
    breakers: Breakers,
    kwargs: dict[str, Any],
    param: str | None,
    code: str,
) -> None:
    with pytest.raises(InvalidField) as caught:
        await route(config, breakers, **kwargs)
    assert caught.value.param == param
    assert caught.value.code == code
