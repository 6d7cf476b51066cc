"""Token buckets and velocity windows in Redis, moved by an injected clock (every topology:
one server, the embedded store, a Cluster, a Sentinel primary)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from router.clock import FrozenClock, from_ms
from router.metrics import Metrics
from router.risk.control import RiskControl
from router.risk.rules import RiskRequest
from router.store import Store, keys

RISK = """\
version: 1
rate_limits:
  tiers:
    default:
      merchant:
        create: {per_second: 1, burst: 3}
        read: {per_second: 2, burst: 2}
      key:
        create: {per_second: 10, burst: 10}
velocity:
  windows: [10m, 1h, 24h]
rules:
  - {name: ip-count, action: flag, when: 'ip_count_10m > 2 || ip_count_1h > 100'}
  - {name: payer-sum, action: flag, when: 'payer_sum_1h > 100000'}
  - {name: ip-payers, action: block, when: 'ip_payers_1h > 3'}
  - {name: failures, action: block, when: 'payer_failed_24h >= 2'}
  - {name: merchant, action: flag, when: 'merchant_count_24h > 1000'}
"""


def control(store: Store, clock: FrozenClock, tmp_path: Path, text: str = RISK) -> RiskControl:
    path = tmp_path / "risk.yaml"
    path.write_text(text)
    return RiskControl(store.risk, clock, Metrics(), path)


def req(clock: FrozenClock, **fields: Any) -> RiskRequest:
    base: dict[str, Any] = {
        "merchant": "mch_risk0001",
        "amount": 500,
        "currency": "CNY",
        "method": "qr",
        "wallet": None,
        "channel": None,
        "livemode": False,
        "metadata": {},
        "ip": "203.0.113.9",
        "payer": "payer-1",
        "now": from_ms(clock.now_ms()),
    }
    return RiskRequest(**(base | fields))


async def test_a_bucket_gives_its_burst_then_one_token_per_interval(
    store: Store, clock: FrozenClock, tmp_path: Path
) -> None:
    risk = control(store, clock, tmp_path)
    seen = [await risk.take("mch_bucket01", "key_1", "read") for _ in range(3)]
    assert [(t.allowed, t.limit, t.remaining) for t in seen if t] == [
        (True, 2, 1),
        (True, 2, 0),
        (False, 2, 0),
    ]
    refused = seen[2]
    assert refused is not None and refused.retry_ms == 500
    clock.advance(0.5)
    again = await risk.take("mch_bucket01", "key_1", "read")
    assert again is not None and (again.allowed, again.remaining, again.reset_ms) == (True, 0, 1000)
    # Another merchant's budget is its own; refunds are not limited by this file.
    other = await risk.take("mch_bucket02", "key_1", "read")
    assert other is not None and other.remaining == 1
    assert await risk.take("mch_bucket01", "key_1", "refund") is None


async def test_velocity_windows_slide_with_the_clock(
    store: Store, clock: FrozenClock, tmp_path: Path
) -> None:
    risk = control(store, clock, tmp_path)
    decisions = []
    for i in range(3):
        screen = await risk.screen("key_1", req(clock, amount=30000 * (i + 1)))
        assert screen.verdict is not None
        decisions.append((screen.verdict.decision, screen.verdict.fired))
        clock.advance(1)
    assert decisions == [("allow", ()), ("allow", ()), ("flag", ("ip-count", "payer-sum"))]
    assert screen.features["ip_count_10m"] == 3
    assert screen.features["payer_sum_1h"] == 180000
    assert screen.features["merchant_count_24h"] == 3
    # Eleven minutes on the 10-minute window is empty; the hour still holds all three.
    clock.advance(11 * 60)
    screen = await risk.screen("key_1", req(clock, amount=100))
    assert screen.features["ip_count_10m"] == 1
    assert screen.features["ip_count_1h"] == 4
    assert screen.features["payer_sum_1h"] == 180100
    clock.advance(2 * 3600)
    screen = await risk.screen("key_1", req(clock, amount=100))
    assert (screen.features["ip_count_1h"], screen.features["merchant_count_24h"]) == (1, 5)


async def test_distinct_payers_per_ip_and_failures_per_payer(
    store: Store, clock: FrozenClock, tmp_path: Path
) -> None:
    risk = control(store, clock, tmp_path)
    verdicts = []
    for i in range(5):
        screen = await risk.screen("key_1", req(clock, payer=f"card-{i}"))
        assert screen.verdict is not None
        verdicts.append(screen.verdict.decision)
        clock.advance(1)  # as fast as the bucket refills: only the rules decide
    # The third is the IP's third in 10 minutes (flagged); the fourth brings its fourth payer.
    assert verdicts == ["allow", "allow", "flag", "block", "block"]
    assert screen.features["ip_payers_1h"] == 5
    # The same payer again is not a new one; an hour later the IP is forgotten.
    screen = await risk.screen("key_1", req(clock, payer="card-4"))
    assert screen.features["ip_payers_1h"] == 5
    clock.advance(3601)
    screen = await risk.screen("key_1", req(clock, payer="card-9"))
    assert screen.features["ip_payers_1h"] == 1

    await risk.count_failure("mch_risk0001", "card-9")
    screen = await risk.screen("key_1", req(clock, payer="card-9"))
    assert screen.verdict is not None and screen.verdict.decision == "allow"
    await risk.count_failure("mch_risk0001", "card-9")
    screen = await risk.screen("key_1", req(clock, payer="card-9"))
    assert screen.verdict is not None
    assert (screen.verdict.decision, screen.verdict.fired[0]) == ("block", "failures")
    assert screen.features["payer_failed_24h"] == 2


async def test_a_create_without_a_token_is_neither_counted_nor_judged(
    store: Store, clock: FrozenClock, tmp_path: Path
) -> None:
    risk = control(store, clock, tmp_path)
    screens = [await risk.screen("key_1", req(clock)) for _ in range(4)]
    taken = [s.taken for s in screens]
    assert [t.allowed for t in taken if t] == [True, True, True, False]
    assert screens[3].verdict is None
    clock.advance(1)
    screen = await risk.screen("key_1", req(clock))
    assert screen.features["ip_count_10m"] == 4


def test_the_clock_is_the_one_injected() -> None:
    # The windows above moved by hours without a sleep: the store never reads its own time.
    assert from_ms(FrozenClock(0).now_ms()) == datetime(1970, 1, 1, tzinfo=UTC)


async def test_a_window_keeps_only_its_own_buckets(
    store: Store, clock: FrozenClock, tmp_path: Path
) -> None:
    risk = control(store, clock, tmp_path)
    for _ in range(40):
        clock.advance(50)  # one bucket of the 10-minute window
        screen = await risk.screen("key_1", req(clock))
    assert screen.features["ip_count_10m"] == 12
    window = keys.velocity_window("mch_risk0001", "ip", "203.0.113.9", "10m")
    # Two fields per bucket written (count, sum); stale buckets go once twice the window's.
    assert 2 * 12 <= await store.redis.hlen(window) <= 6 * 12 + 2


async def test_the_global_ceiling_is_shared_by_every_merchant(
    store: Store, clock: FrozenClock, tmp_path: Path
) -> None:
    text = (
        "version: 1\nrate_limits:\n  global:\n    refund: {per_second: 1, burst: 2}\n"
        "  tiers:\n    default:\n      merchant:\n        refund: {per_second: 1, burst: 5}\n"
    )
    risk = control(store, clock, tmp_path, text)
    seen = [await risk.take(f"mch_global{i:02d}", "key_1", "refund") for i in range(3)]
    assert [(t.allowed, t.limit, t.remaining) for t in seen if t] == [
        (True, 2, 1),
        (True, 2, 0),
        (False, 2, 0),
    ]
    # A second later the global bucket has one token again; it is the tightest, so the
    # headers speak of it.
    clock.advance(1)
    again = await risk.take("mch_global02", "key_1", "refund")
    assert again is not None and (again.allowed, again.limit, again.remaining) == (True, 2, 0)
