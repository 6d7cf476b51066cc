"""Hedged creates, the parts that are logic: the delay, the budget, the settings, and the
decision (which payments may be hedged, and creates outraced by a hedge counted as slow)
with an injected clock and the embedded store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from router.clock import FrozenClock
from router.payments.hedged import target
from router.routing.config import ConfigError, RoutingConfig, load_config
from router.routing.decide import Decision, decide
from router.routing.health import Breakers
from router.routing.hedge import HedgeBudget, HedgeSettings, hedge_delay_ms
from router.routing.rules import RouteRequest
from router.store import Store, open_store
from tests.router.test_routing import ACCOUNTS, NOON_SHANGHAI, table
from tests.router.test_routing_adaptive import view

ADAPTIVE = """\
rules:
  - name: both
    strategy: adaptive
    exploration: 0.0
    accounts: [wechat_main, wechat_backup]
fees: {wechat_main: 0.38, wechat_backup: 0.6}
"""


def test_the_delay_follows_the_fastest_candidate_within_bounds() -> None:
    settings = HedgeSettings(delay_factor=2, min_delay_ms=250, max_delay_ms=1500)
    assert hedge_delay_ms(settings, [400.0, 3200.0]) == 800
    assert hedge_delay_ms(settings, [50.0, None]) == 250
    assert hedge_delay_ms(settings, [12_800.0]) == 1500
    # Nothing measured yet: the longest delay, not a guess.
    assert hedge_delay_ms(settings, [None, None]) == 1500


def test_the_budget_caps_hedges_at_its_share_of_creates_after_a_burst() -> None:
    settings = HedgeSettings(budget=0.05, burst=10)
    budget = HedgeBudget()
    spent = 0
    for _ in range(1000):
        budget.earn(settings)
        if budget.left(settings) >= 1 and budget.spend(settings):
            spent += 1
    # Every create slow: the saved-up burst, then one hedge per twenty creates.
    assert 10 + 45 <= spent <= 10 + 50
    empty = HedgeBudget()
    assert empty.spend(HedgeSettings(burst=1))
    assert not empty.spend(HedgeSettings(burst=1))


def test_a_budget_of_zero_never_hedges_after_the_burst() -> None:
    settings = HedgeSettings(budget=0.0, burst=1)
    budget = HedgeBudget()
    assert budget.spend(settings)
    for _ in range(100):
        budget.earn(settings)
    assert not budget.spend(settings)


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ("{methods: [qr, barcode]}", "barcode cannot be hedged"),
        ("{min_delay_ms: 2000, max_delay_ms: 1000}", "min_delay_ms must not exceed"),
        ("{budget: 0.9}", "adaptive.hedge.budget"),
        ("{delay: 5}", "adaptive.hedge.delay"),
    ],
)
def test_the_routing_file_refuses_unsafe_hedging(
    tmp_path: Path, section: str, problem: str
) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(ACCOUNTS + ADAPTIVE + f"adaptive:\n  hedge: {section}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert problem in str(caught.value)


@pytest.fixture
async def embedded(clock: FrozenClock) -> AsyncIterator[Store]:
    opened = await open_store(None, clock)
    yield opened
    await opened.close()


def routing(tmp_path: Path, hedge: str = "") -> RoutingConfig:
    path = tmp_path / "routing.yaml"
    path.write_text(ACCOUNTS + ADAPTIVE + (f"adaptive:\n  hedge: {hedge}\n" if hedge else ""))
    return load_config(path).config


async def decision(
    config: RoutingConfig, breakers: Breakers, method: str = "qr", **kw: object
) -> Decision:
    req = RouteRequest(
        payment_id="pay_hedge000000000000001",
        method=method,  # type: ignore[arg-type]
        currency="CNY",
        amount=1999,
        wallet=None,
        merchant_id="mch_x",
        metadata={},
        now=NOON_SHANGHAI,
    )
    return await decide(config, table(), breakers, req, livemode=False, pinned=None, **kw)


async def test_creates_outraced_by_a_hedge_count_as_slow_at_once(
    tmp_path: Path, embedded: Store, clock: FrozenClock
) -> None:
    config = routing(tmp_path)
    breakers = Breakers(embedded.breakers, clock, lambda: (config.health, config.breaker))
    first = await decision(config, breakers)
    assert [c.account for c in first.candidates] == ["wechat_main", "wechat_backup"]
    # Nothing measured yet: the longest delay.
    assert first.hedge_delay_ms == 1500
    assert first.explain()["hedge"] == {"delay_ms": 1500, "to": "wechat_backup"}
    tokens = [breakers.call_started("wechat_main") for _ in range(3)]
    clock.advance(1.6)
    # Under way past the hedge delay, not the 2 s SLO: a stalled machine looks like this too.
    assert (await decision(config, breakers)).candidates[0].account == "wechat_main"
    for token in tokens:
        breakers.outraced("wechat_main", token)
    # A peer answered first while these are still under way: that is the account's doing.
    moved = await decision(config, breakers)
    assert [c.account for c in moved.candidates] == ["wechat_backup", "wechat_main"]
    assert moved.terms["wechat_main"]["p95_ms"] == 12_800
    for token in tokens:
        breakers.call_ended("wechat_main", token)
    assert (await decision(config, breakers)).candidates[0].account == "wechat_main"
    off = routing(tmp_path, "{enabled: false}")
    kept = await decision(off, breakers)
    assert kept.hedge_delay_ms is None and kept.explain()["hedge"] is None


async def test_barcode_and_methods_left_out_are_never_hedged(
    tmp_path: Path, embedded: Store, clock: FrozenClock
) -> None:
    config = routing(tmp_path, "{methods: [h5]}")
    breakers = Breakers(embedded.breakers, clock, lambda: (config.health, config.breaker))
    assert (await decision(config, breakers, "barcode")).hedge_delay_ms is None
    assert (await decision(config, breakers, "qr")).hedge_delay_ms is None
    assert (await decision(config, breakers, "h5")).hedge_delay_ms == 1500
    default = routing(tmp_path)
    assert (await decision(default, breakers, "barcode")).hedge_delay_ms is None


@pytest.mark.parametrize(
    ("state", "role", "picked"),
    [
        ("closed", "ranked", "wechat_backup"),
        ("forced_closed", "ranked", "wechat_backup"),
        ("half_open", "probe", None),
        ("closed", "outlier", None),
    ],
)
def test_a_hedge_goes_only_to_a_closed_account_that_is_no_outlier(
    state: str, role: str, picked: str | None
) -> None:
    accounts = table()
    main, backup = accounts["wechat_main"].channel, accounts["wechat_backup"].channel
    made = Decision(
        "both",
        "adaptive",
        [main, backup],
        {
            "wechat_main": view("wechat_main", {}),
            "wechat_backup": view("wechat_backup", {}, state=state),
        },
        terms={"wechat_main": {"role": "leader"}, "wechat_backup": {"role": role}},
        hedge_delay_ms=250,
    )
    found = target(made, {"wechat_main"})
    assert (found.account if found else None) == picked
    assert target(made, {"wechat_main", "wechat_backup"}) is None
