"""The `adaptive` strategy: decisions from hand-made health windows, an injected clock (the
windows' bucket numbers and read time) and seeded draws; and what its window keeps in Redis
when a breaker closes."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from pathlib import Path

import pytest

from channels.wechat.sandbox import ensure_sandbox
from router.clock import FrozenClock
from router.routing.adaptive import AdaptiveSettings, Terms, rank, rng_for
from router.routing.health import AccountHealth, Breakers, BreakerSettings, HealthSettings
from router.routing.window import decay, dimension, latency_bin
from router.store import Store
from tests.router.test_cli import payrouter

BUCKET_MS = 5000
NOW_MS = 1_000 * BUCKET_MS
SETTINGS = AdaptiveSettings()
DIM = dimension("qr", 1999)


def view(
    name: str,
    buckets: Mapping[int, Mapping[str, int]],
    *,
    state: str = "closed",
    now_ms: int = NOW_MS,
) -> AccountHealth:
    """An account as a snapshot shows it: `buckets` maps age in buckets to its fields."""
    now_bucket = now_ms // BUCKET_MS
    window = tuple((now_bucket - age, dict(fields)) for age, fields in sorted(buckets.items()))
    return AccountHealth(
        account=name,
        state=state,  # type: ignore[arg-type]
        calls=0,
        failures=0,
        avg_latency_ms=0.0,
        score=0.5,
        open_until_ms=None,
        forced=None,
        window=window,
        read_ms=now_ms,
    )


def calls(ok: int, fail: int = 0, latency_ms: int = 30, slow: int = 0) -> dict[str, int]:
    """One bucket: `ok` + `fail` calls of the test's dimension, `slow` of them at 3 s."""
    fast = ok + fail - slow
    fields = {"ok": ok, "fail": fail, f"d:{DIM}:ok": ok, f"d:{DIM}:fail": fail}
    fields[latency_bin(latency_ms)] = fast
    if slow:
        fields[latency_bin(3000)] = fields.get(latency_bin(3000), 0) + slow
    return {k: v for k, v in fields.items() if v}


def steady(
    ok_per_bucket: int, fail_per_bucket: int = 0, slow: int = 0
) -> dict[int, dict[str, int]]:
    """A full window (12 buckets) of the same traffic."""
    return {age: calls(ok_per_bucket, fail_per_bucket, slow=slow) for age in range(12)}


def decide(
    health: Mapping[str, AccountHealth],
    payment_id: str,
    *,
    fees: Mapping[str, float] | None = None,
    exploration: float = 0.05,
    settings: AdaptiveSettings = SETTINGS,
) -> list[str]:
    ordered, _ = rank(
        list(health),
        health,
        settings=settings,
        slo_ms=2000,
        bucket_ms=BUCKET_MS,
        fees=fees or {},
        dim=DIM,
        exploration=exploration,
        rng=rng_for(payment_id),
    )
    return ordered


def terms_of(health: Mapping[str, AccountHealth], fees: Mapping[str, float]) -> dict[str, Terms]:
    """Each account's terms, without exploration."""
    _, terms = rank(
        list(health),
        health,
        settings=SETTINGS,
        slo_ms=2000,
        bucket_ms=BUCKET_MS,
        fees=fees,
        dim=DIM,
        exploration=0.0,
        rng=random.Random(2),
    )
    return terms


def first_share(
    health: Mapping[str, AccountHealth], account: str, n: int = 1000, **kw: object
) -> float:
    firsts = [decide(health, f"pay_{i}", **kw)[0] for i in range(n)]  # type: ignore[arg-type]
    return firsts.count(account) / n


def test_exploration_of_a_poor_account_grows_with_the_time_it_went_unobserved() -> None:
    leader = view("a", steady(25))
    shares = []
    for unobserved_buckets in (0, 6, 12, 24, 48):
        # b answered 30% of its calls with errors, then nobody called it.
        ages = {unobserved_buckets + age: calls(18, 8) for age in range(4)}
        health = {"a": leader, "b": view("b", ages)}
        shares.append(first_share(health, "b", exploration=0.2))
    assert shares[0] < 0.01
    assert shares == sorted(shares)
    assert shares[-1] > 0.1 > shares[1]


def test_an_account_never_observed_is_explored_but_never_leads_a_healthy_cheaper_one() -> None:
    health = {"a": view("a", steady(25)), "new": view("new", {})}
    share = first_share(health, "new", fees={"a": 0.38, "new": 0.6}, exploration=0.05)
    assert 0.01 < share <= 0.05


def test_an_outlier_goes_last_and_is_not_explored() -> None:
    health = {
        "a": view("a", steady(20)),
        "b": view("b", steady(10, 10)),
        "c": view("c", steady(20)),
    }
    ordered, terms = rank(
        ["b", "a", "c"],
        health,
        settings=SETTINGS,
        slo_ms=2000,
        bucket_ms=BUCKET_MS,
        fees={},
        dim=DIM,
        exploration=0.0,
        rng=random.Random(1),
    )
    assert ordered[-1] == "b"
    assert terms["b"].outlier and terms["b"].role == "outlier"
    assert first_share(health, "b", exploration=0.5) == 0.0


def test_a_degrading_leader_hands_over_to_the_best_other_account() -> None:
    # a was best and cheapest; its last two buckets are 40% failures.
    window = steady(20)
    window[0] = calls(12, 8)
    window[1] = calls(12, 8)
    health = {
        "a": view("a", window),
        "b": view("b", steady(3, 1)),
        "c": view("c", steady(3)),
    }
    fees = {"a": 0.38, "b": 0.55, "c": 0.6}
    assert decide(health, "pay_x", fees=fees, exploration=0.0)[:1] == ["c"]


def test_latency_above_the_slo_lowers_an_account_below_a_fast_one() -> None:
    fast, slow = steady(20), steady(20, slow=6)
    health = {"slow": view("slow", slow), "fast": view("fast", fast)}
    terms = terms_of(health, {"slow": 0.38, "fast": 0.6})
    assert terms["slow"].p95_ms == 3200 and terms["fast"].p95_ms == 30
    assert terms["slow"].latency < 0.7 and terms["fast"].latency == 1.0
    assert decide(health, "p", fees={"slow": 0.38, "fast": 0.6}, exploration=0.0)[0] == "fast"


def test_a_slow_tail_hands_the_lead_to_a_tied_fast_account() -> None:
    # One call in the window past the SLO: the p95 (and the utility) has not moved, but the
    # p99 has, and the cheaper account gives the lead to the equally reliable fast one.
    cheap = steady(20)
    cheap[0] = calls(20, slow=1)
    health = {"cheap": view("cheap", cheap), "dear": view("dear", steady(20))}
    fees = {"cheap": 0.38, "dear": 0.6}
    terms = terms_of(health, fees)
    assert terms["cheap"].p95_ms == 30 and terms["cheap"].latency == 1.0
    assert terms["cheap"].p99_ms == 3200 and terms["dear"].p99_ms == 30
    assert decide(health, "p", fees=fees, exploration=0.0) == ["dear", "cheap"]
    # Without the slow calls, the cheaper one leads.
    health["cheap"] = view("cheap", steady(20))
    assert decide(health, "p", fees=fees, exploration=0.0) == ["cheap", "dear"]
    # An account whose record has all but faded: two calls, one of them slow, are enough to
    # order it after the fast one (too few to judge its p95).
    health["cheap"] = view("cheap", {0: calls(2, slow=1)})
    terms = terms_of(health, fees)
    assert terms["cheap"].p95_ms is None and terms["cheap"].p99_ms == 3200
    assert decide(health, "p", fees=fees, exploration=0.0) == ["dear", "cheap"]


def test_the_fee_breaks_ties_and_the_weight_can_outweigh_success() -> None:
    health = {"a": view("a", steady(20)), "b": view("b", steady(20))}
    assert decide(health, "p", fees={"a": 0.6, "b": 0.38}, exploration=0.0)[0] == "b"
    assert decide(health, "p", fees={"a": 0.38, "b": 0.6}, exploration=0.0)[0] == "a"
    # b fails 5% more than a; at 20 points per percent of fee, 0.3% cheaper is worth 6.
    health["b"] = view("b", steady(19, 1))
    assert decide(health, "p", fees={"a": 0.6, "b": 0.3}, exploration=0.0)[0] == "a"
    priced = SETTINGS.model_copy(update={"fee_weight": 20.0})
    assert (
        decide(health, "p", fees={"a": 0.6, "b": 0.3}, exploration=0.0, settings=priced)[0] == "b"
    )


def test_a_half_open_account_is_probed_first_for_its_share() -> None:
    health = {"a": view("a", steady(20)), "b": view("b", {}, state="half_open")}
    share = first_share(health, "b", exploration=0.0)
    assert 0.15 < share < 0.25
    orders = {tuple(decide(health, f"p{i}", exploration=0.0)) for i in range(50)}
    assert orders == {("a", "b"), ("b", "a")}
    # So is one whose record (the failures that opened its breaker, say) makes it an
    # outlier: the probes are how it shows it has recovered.
    health["b"] = view("b", steady(10, 10), state="half_open")
    share = first_share(health, "b", exploration=0.0)
    assert 0.15 < share < 0.25


def test_the_same_payment_gets_the_same_decision() -> None:
    health = {"a": view("a", steady(20)), "b": view("b", {})}
    assert {tuple(decide(health, "pay_same", exploration=0.5)) for _ in range(20)} == {
        tuple(decide(health, "pay_same", exploration=0.5))
    }


def test_decay_halves_per_half_life() -> None:
    buckets = ((100, {"ok": 8}), (97, {"ok": 8}))
    decayed = decay(buckets, now_bucket=100, bucket_s=5, half_life_s=15, dim=None)
    assert decayed.ok == 12.0


def test_decay_by_newer_calls_keeps_an_idle_accounts_evidence() -> None:
    # Newest first: 10 calls, then 20, then 5 failures. Each bucket also halves per 10 newer
    # calls; time alone (a half-life of an hour) hardly counts.
    busy = ((100, {"ok": 10}), (99, {"ok": 20}), (98, {"fail": 4}))
    decayed = decay(busy, now_bucket=100, bucket_s=5, half_life_s=3600, dim=None, half_calls=10)
    assert decayed.ok == pytest.approx(20.0, rel=0.01)
    assert decayed.fail == pytest.approx(0.5, rel=0.01)
    # An account nobody called since its failures keeps them in full.
    idle = ((98, {"fail": 4}),)
    decayed = decay(idle, now_bucket=100, bucket_s=5, half_life_s=3600, dim=None, half_calls=10)
    assert decayed.fail == pytest.approx(4.0, rel=0.01)


async def test_closing_a_breaker_keeps_the_successes_the_strategy_needs(
    store: Store, clock: FrozenClock
) -> None:
    health = HealthSettings(window_s=60, buckets=12, latency_slo_ms=2000, flush_s=5)
    breaker = BreakerSettings(consecutive_failures=3, open_s=1, close_after=2)
    b = Breakers(store.breakers, clock, lambda: (health, breaker), rng=lambda: 0.0)
    for _ in range(5):
        await b.record("acc", "ok", 20, dim=DIM)
    await b.flush()
    for _ in range(3):
        await b.record("acc", "fail", 20, dim=DIM)
    assert (await b.snapshot(["acc"]))["acc"].state == "open"
    clock.advance(1.5)
    for _ in range(2):
        admission = await b.admit("acc")
        assert admission.admitted
        await b.record("acc", "ok", 20, admission.probe_id, dim=DIM)
    after = (await b.snapshot(["acc"]))["acc"]
    assert after.state == "closed"
    fields: dict[str, int] = {}
    for _, bucket in after.window:
        for name, value in bucket.items():
            fields[name] = fields.get(name, 0) + value
    assert fields.get("fail", 0) == 0 and fields.get(f"d:{DIM}:fail", 0) == 0
    assert fields["ok"] == 7 and fields[f"d:{DIM}:ok"] == 7
    assert fields[latency_bin(20)] == 10  # every call's latency, failures included


def test_calls_still_under_way_past_the_slo_count_as_slow_at_once() -> None:
    health = {"a": view("a", steady(20)), "b": view("b", steady(20))}
    fees = {"a": 0.38, "b": 0.6}
    assert decide(health, "p", fees=fees, exploration=0.0)[0] == "a"
    ordered, terms = rank(
        ["a", "b"],
        health,
        settings=SETTINGS,
        slo_ms=2000,
        bucket_ms=BUCKET_MS,
        fees=fees,
        dim=DIM,
        exploration=0.0,
        rng=random.Random(3),
        slow_in_flight={"a": 20},
    )
    assert ordered[0] == "b"
    assert terms["a"].p95_ms == 12_800 and terms["a"].latency < 0.2


def test_breakers_count_the_creates_under_way_past_a_threshold(
    clock: FrozenClock,
) -> None:
    b = Breakers(
        None,  # type: ignore[arg-type]  # no store is touched
        clock,
        lambda: (HealthSettings(), BreakerSettings()),
    )
    first = b.call_started("acc")
    clock.advance(1.5)
    second = b.call_started("acc")
    clock.advance(1.0)
    assert b.slow_in_flight("acc", 2000) == 1
    assert b.slow_in_flight("other", 2000) == 0
    b.call_ended("acc", first)
    assert b.slow_in_flight("acc", 2000) == 0
    clock.advance(1.1)
    assert b.slow_in_flight("acc", 2000) == 1
    b.call_ended("acc", second)
    assert b.slow_in_flight("acc", 0) == 0


def test_routes_explain_shows_the_terms_of_each_account(tmp_path: Path) -> None:
    one, two = ensure_sandbox(tmp_path / "sb", 0), ensure_sandbox(tmp_path / "sb", 1)
    routing = tmp_path / "routing.yaml"
    routing.write_text(
        "version: 1\naccounts:\n"
        f"  wechat_one: {{type: wechat, base_url: http://127.0.0.1:9, livemode: false,"
        f" credentials: {{file: {one.credentials_path}}}}}\n"
        f"  wechat_two: {{type: wechat, base_url: http://127.0.0.1:9, livemode: false,"
        f" credentials: {{file: {two.credentials_path}}}}}\n"
        "defaults: {strategy: adaptive}\nfees: {wechat_one: 0.6, wechat_two: 0.38}\n"
    )
    args = ("routes", "explain", "--method", "qr", "--amount", "1999", "--payment-id", "pay_x")
    env = {"PAYROUTER_ROUTING": str(routing)}
    text = payrouter(*args, env=env)
    assert text.returncode == 0, text.stderr
    assert "rule default (adaptive)" in text.stdout
    assert "leader: utility 0.9800 = success 0.9800 x latency 1.00" in text.stdout
    assert "pick: wechat_two" in text.stdout
    shown = json.loads(payrouter(*args, "--json", env=env).stdout)
    terms = {row["account"]: row["terms"] for row in shown["considered"]}
    assert terms["wechat_two"]["role"] == "leader" and terms["wechat_one"]["fee_pct"] == 0.6
