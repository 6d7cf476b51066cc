"""The breaker state machine on a real redis-server (and the embedded store), with an injected
clock and jitter: no sleeping."""

from __future__ import annotations

import asyncio

import pytest

from router.clock import FrozenClock
from router.routing.health import Breakers, BreakerSettings, HealthSettings
from router.store import Store, open_store, redis_client

A = "wechat_main"
HEALTH = HealthSettings(window_s=60, buckets=12, latency_slo_ms=1000)
BREAKER = BreakerSettings(
    failure_rate=0.5,
    min_calls=10,
    consecutive_failures=5,
    open_s=10,
    max_open_s=60,
    half_open_probes=2,
    close_after=3,
    probe_timeout_s=30,
)


def breakers(store: Store, clock: FrozenClock, jitter: float = 0.0) -> Breakers:
    return Breakers(store.breakers, clock, lambda: (HEALTH, BREAKER), rng=lambda: jitter)


@pytest.fixture
def two(store: Store, clock: FrozenClock) -> tuple[Breakers, Breakers]:
    """Two router processes' views of one shared breaker."""
    return breakers(store, clock), breakers(store, clock)


async def state(b: Breakers) -> str:
    return (await b.snapshot([A]))[A].state


async def test_a_run_of_failures_trips_it(store: Store, clock: FrozenClock) -> None:
    b = breakers(store, clock)
    for _ in range(4):
        assert await b.record(A, "fail", 100) == "closed"
    assert await b.record(A, "fail", 100) == "open"
    assert not (await b.admit(A)).admitted


async def test_failure_rate_over_the_window_trips_it(store: Store, clock: FrozenClock) -> None:
    b = breakers(store, clock)
    for i in range(9):
        assert await b.record(A, "fail" if i % 2 else "ok", 50) == "closed"
    # 10th call: 5 failures of 10 = 50%, never more than one in a row.
    assert await b.record(A, "fail", 50) == "open"


async def test_neutral_outcomes_do_not_count(store: Store, clock: FrozenClock) -> None:
    b = breakers(store, clock)
    for _ in range(20):
        assert await b.record(A, "neutral", 50) == "closed"
    assert (await b.snapshot([A]))[A].calls == 0


async def test_old_failures_leave_the_window(store: Store, clock: FrozenClock) -> None:
    b = breakers(store, clock)
    for _ in range(4):
        await b.record(A, "fail", 50)
        await b.record(A, "ok", 50)
    clock.advance(61)
    for _ in range(4):
        await b.record(A, "ok", 50)
    await b.flush()
    view = (await b.snapshot([A]))[A]
    assert (view.calls, view.failures) == (4, 0)


async def test_half_open_probes_then_closes(
    two: tuple[Breakers, Breakers], clock: FrozenClock
) -> None:
    first, second = two
    for _ in range(5):
        await first.record(A, "fail", 100)
    assert await state(second) == "open"
    assert not (await second.admit(A)).admitted
    clock.advance(10)
    assert await state(second) == "half_open"
    p1, p2, p3 = await first.admit(A), await second.admit(A), await second.admit(A)
    assert (p1.admitted, p2.admitted, p3.admitted) == (True, True, False)
    assert await first.record(A, "ok", 50, p1.probe_id) == "half_open"
    assert await second.record(A, "ok", 50, p2.probe_id) == "half_open"
    p4 = await first.admit(A)
    assert p4.admitted
    assert await first.record(A, "ok", 50, p4.probe_id) == "closed"
    assert (await second.admit(A)).state == "closed"
    # The failures that opened it are forgotten: one new failure does not re-open it.
    assert await second.record(A, "fail", 50) == "closed"


async def test_a_failed_probe_reopens_for_longer(store: Store, clock: FrozenClock) -> None:
    b = breakers(store, clock)
    for _ in range(5):
        await b.record(A, "fail", 100)
    first_until = (await b.snapshot([A]))[A].open_until_ms
    assert first_until == clock.now_ms() + 10_000
    clock.advance(10)
    probe = await b.admit(A)
    assert await b.record(A, "fail", 100, probe.probe_id) == "open"
    assert (await b.snapshot([A]))[A].open_until_ms == clock.now_ms() + 20_000
    clock.advance(20)
    probe = await b.admit(A)
    await b.record(A, "fail", 100, probe.probe_id)
    clock.advance(40)
    probe = await b.admit(A)
    await b.record(A, "fail", 100, probe.probe_id)
    # 10, 20, 40, then capped at max_open_s.
    assert (await b.snapshot([A]))[A].open_until_ms == clock.now_ms() + 60_000


async def test_a_probe_refused_at_once_reopens_for_open_s(store: Store, clock: FrozenClock) -> None:
    b = breakers(store, clock)
    for _ in range(5):
        await b.record(A, "fail", 100)
    clock.advance(10)
    probe = await b.admit(A)
    await b.record(A, "fail", 100, probe.probe_id)
    assert (await b.snapshot([A]))[A].open_until_ms == clock.now_ms() + 20_000
    clock.advance(20)
    for _ in range(3):
        # Unreachable or 503 within the SLO: cheap to repeat, so probed again after open_s,
        # however long it was open before.
        probe = await b.admit(A)
        assert probe.admitted
        assert await b.record(A, "fail", 20, probe.probe_id, refused=True) == "open"
        assert (await b.snapshot([A]))[A].open_until_ms == clock.now_ms() + 10_000
        clock.advance(10)
    # A refusal that kept the probe waiting past the SLO is no cheaper than any failure.
    probe = await b.admit(A)
    await b.record(A, "fail", 1500, probe.probe_id, refused=True)
    assert (await b.snapshot([A]))[A].open_until_ms == clock.now_ms() + 20_000
    # Nor is a failure whose outcome is unknown.
    clock.advance(20)
    probe = await b.admit(A)
    await b.record(A, "fail", 20, probe.probe_id)
    assert (await b.snapshot([A]))[A].open_until_ms == clock.now_ms() + 40_000


async def test_jitter_lengthens_the_open_time(store: Store, clock: FrozenClock) -> None:
    b = breakers(store, clock, jitter=0.5)
    for _ in range(5):
        await b.record(A, "fail", 100)
    assert (await b.snapshot([A]))[A].open_until_ms == clock.now_ms() + 11_000


async def test_half_open_race_admits_the_limit_across_processes(
    two: tuple[Breakers, Breakers], clock: FrozenClock
) -> None:
    first, second = two
    for _ in range(5):
        await first.record(A, "fail", 100)
    clock.advance(10)
    results = await asyncio.gather(*(b.admit(A) for b in (first, second) * 10))
    assert sum(r.admitted for r in results) == BREAKER.half_open_probes


async def test_a_dead_process_probe_slot_is_freed(store: Store, clock: FrozenClock) -> None:
    b = breakers(store, clock)
    for _ in range(5):
        await b.record(A, "fail", 100)
    clock.advance(10)
    assert (await b.admit(A)).admitted
    assert (await b.admit(A)).admitted
    assert not (await b.admit(A)).admitted
    clock.advance(31)  # both probes' processes died without recording
    assert (await b.admit(A)).admitted


async def test_operator_overrides(store: Store, clock: FrozenClock) -> None:
    b = breakers(store, clock)
    await b.force(A, "open")
    assert (await b.admit(A)).state == "forced_open"
    assert await state(b) == "forced_open"
    await b.force(A, "closed")
    for _ in range(10):
        await b.record(A, "fail", 100)
    assert (await b.admit(A)).admitted
    await b.force(A, None)
    assert await state(b) == "open"


async def test_score_reflects_success_and_latency(store: Store, clock: FrozenClock) -> None:
    b = breakers(store, clock)
    fresh = (await b.snapshot([A]))[A]
    assert fresh.score == 0.5
    for _ in range(8):
        await b.record(A, "ok", 500)
    await b.flush()
    fast = (await b.snapshot([A]))[A].score
    for _ in range(8):
        await b.record(A, "ok", 3500)
    await b.flush()
    slow = (await b.snapshot([A]))[A].score
    assert fast == pytest.approx(0.9, abs=0.01)
    assert slow < fast / 1.5


async def reads_of_breakers(url: str) -> int:
    """How many hashes (breaker states and window buckets) the server has read since its
    statistics were reset."""
    client = redis_client(url)
    try:
        stats = await client.info("commandstats")
    finally:
        await client.aclose()
    return int(stats.get("cmdstat_hgetall", {}).get("calls", 0))


async def test_concurrent_snapshots_share_one_read(redis_url: str, clock: FrozenClock) -> None:
    store = await open_store(redis_url, clock)
    try:
        b = Breakers(store.breakers, clock, lambda: (HEALTH, BREAKER), cache_s=0.25)
        await store.redis.config_resetstat()
        # The cache is empty, as when it has just run out with many requests in flight.
        views = await asyncio.gather(*(b.snapshot([A, "wechat_backup"]) for _ in range(8)))
        # One read: both accounts' state and window buckets, once each.
        once = 2 * (1 + HEALTH.buckets)
        assert await reads_of_breakers(redis_url) == once
        assert all(v[A].state == "closed" for v in views)
        await b.snapshot([A])
        assert await reads_of_breakers(redis_url) == once  # cached
    finally:
        await store.close()


async def test_a_read_under_way_is_not_cached_after_this_process_changed_the_breaker(
    redis_url: str, clock: FrozenClock
) -> None:
    store = await open_store(redis_url, clock)
    try:
        b = Breakers(store.breakers, clock, lambda: (HEALTH, BREAKER), cache_s=60)
        reading = asyncio.create_task(b.snapshot([A]))
        await asyncio.sleep(0)  # the read has begun
        await b.force(A, "open")
        await reading
        assert await state(b) == "forced_open"
    finally:
        await store.close()
