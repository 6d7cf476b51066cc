"""Plain successes are tallied per process and flushed; everything else is written at once and
carries the tally with it. On a real redis-server (and the embedded store), with an injected
clock: flushes are called, never waited for."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import RedisError

from router.clock import FrozenClock
from router.routing.health import Breakers, BreakerSettings, HealthSettings, Outcome
from router.store import Store, open_store, redis_client

A = "wechat_main"
HEALTH = HealthSettings(window_s=60, buckets=12, latency_slo_ms=1000, flush_s=5)
BREAKER = BreakerSettings(failure_rate=0.5, min_calls=10, consecutive_failures=5, open_s=10)


def breakers(store: Store, clock: FrozenClock) -> Breakers:
    return Breakers(store.breakers, clock, lambda: (HEALTH, BREAKER), rng=lambda: 0.0)


async def window(b: Breakers) -> tuple[int, int, float]:
    view = (await b.snapshot([A]))[A]
    return view.calls, view.failures, view.avg_latency_ms


async def test_successes_are_written_by_a_flush_only(store: Store, clock: FrozenClock) -> None:
    b, other = breakers(store, clock), breakers(store, clock)
    batch = store.breakers.batch()
    assert b.queue_record(batch, A, "ok", 100) is None
    assert len(batch.pipe) == 0
    assert await b.record(A, "ok", 200) == "closed"
    assert await window(b) == await window(other) == (0, 0, 0.0)
    assert await b.flush() == 1
    assert await window(other) == (2, 0, 150.0)
    assert await b.flush() == 0
    assert await window(other) == (2, 0, 150.0)


async def test_one_flush_writes_every_account_and_bucket(store: Store, clock: FrozenClock) -> None:
    b = breakers(store, clock)
    await b.record(A, "ok", 100)
    clock.advance(5)  # the next bucket
    await b.record(A, "ok", 300)
    await b.record("wechat_backup", "ok", 50)
    assert await b.flush() == 2
    views = await b.snapshot([A, "wechat_backup"])
    assert (views[A].calls, views[A].avg_latency_ms) == (2, 200.0)
    assert views["wechat_backup"].calls == 1
    clock.advance(56)  # the first bucket has left the window
    assert (await b.snapshot([A]))[A].calls == 1


async def test_successes_older_than_the_window_are_not_written(
    store: Store, clock: FrozenClock
) -> None:
    b = breakers(store, clock)
    await b.record(A, "ok", 100)
    clock.advance(61)
    assert await b.flush() == 0
    assert await window(b) == (0, 0, 0.0)


async def test_a_failure_counts_the_unflushed_successes(store: Store, clock: FrozenClock) -> None:
    first, second = breakers(store, clock), breakers(store, clock)
    outcomes: tuple[Outcome, ...] = ("fail", "ok", "fail", "ok", "fail", "ok", "fail", "ok", "ok")
    for outcome in outcomes:
        await second.record(A, outcome, 10)
    await second.flush()
    for _ in range(3):
        await first.record(A, "ok", 10)
    # 5 failures of 10 calls would trip it; with first's 3 unflushed successes it is 5 of 13.
    assert await first.record(A, "fail", 10) == "closed"
    assert await window(second) == (13, 5, 10.0)
    assert await first.flush() == 0  # folded in, not written twice


async def test_a_success_before_a_failure_breaks_the_run(store: Store, clock: FrozenClock) -> None:
    b = breakers(store, clock)
    for _ in range(4):
        await b.record(A, "fail", 10)
    for _ in range(12):
        await b.record(A, "ok", 10)
    # The unflushed successes came after those four failures: a new run starts.
    for _ in range(4):
        assert await b.record(A, "fail", 10) == "closed"
    # 9 failures of 21 calls: under the rate, so only the run of five trips it.
    assert await b.record(A, "fail", 10) == "open"


async def test_a_flushed_success_breaks_the_run(store: Store, clock: FrozenClock) -> None:
    b = breakers(store, clock)
    for _ in range(4):
        await b.record(A, "fail", 10)
    await b.record(A, "ok", 10)
    await b.flush()
    for _ in range(4):
        assert await b.record(A, "fail", 10) == "closed"


async def test_a_success_flushed_late_does_not_break_a_later_run(
    store: Store, clock: FrozenClock
) -> None:
    first, second = breakers(store, clock), breakers(store, clock)
    await first.record(A, "ok", 10)
    clock.advance(1)
    for _ in range(4):
        await second.record(A, "fail", 10)
    await first.flush()  # its success came before all four failures
    assert await second.record(A, "fail", 10) == "open"


async def test_a_probe_success_is_written_at_once(store: Store, clock: FrozenClock) -> None:
    b, other = breakers(store, clock), breakers(store, clock)
    for _ in range(5):
        await b.record(A, "fail", 10)
    clock.advance(10)
    probe = await b.admit(A)
    assert await b.record(A, "ok", 10, probe.probe_id) == "half_open"
    assert await window(other) == (6, 5, 10.0)


async def test_a_failed_flush_keeps_the_tally(redis_url: str, clock: FrozenClock) -> None:
    admin = redis_client(redis_url)
    user = f"redis://flusher:pw@{redis_url.removeprefix('redis://')}"
    await admin.acl_setuser(
        "flusher", enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all"]
    )
    store = await open_store(user, clock)
    try:
        b = breakers(store, clock)
        await b.record(A, "ok", 100)
        await admin.acl_setuser("flusher", commands=["-evalsha"])
        with pytest.raises(RedisError):
            await b.flush()
        await admin.acl_setuser("flusher", commands=["+evalsha"])
        await b.record(A, "ok", 300)
        assert await b.flush() == 1
        assert await window(b) == (2, 0, 200.0)
    finally:
        await store.close()
        await admin.acl_deluser("flusher")
        await admin.aclose()


async def test_run_flushes_what_is_left_when_stopped(store: Store, clock: FrozenClock) -> None:
    b = breakers(store, clock)
    stop = asyncio.Event()
    task = asyncio.create_task(b.run(stop))
    await b.record(A, "ok", 100)
    stop.set()
    await task
    assert await window(b) == (1, 0, 100.0)
