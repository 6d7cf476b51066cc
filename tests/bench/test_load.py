"""The load driver: bounded by count and by time, failures counted by kind, open loop."""

from __future__ import annotations

import asyncio
import time

from benchmarks.harness.load import Exhausted, Failed, LoadShape, drive


async def test_closed_loop_stops_at_count_and_holds_concurrency() -> None:
    running = 0
    most = 0

    async def op() -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.001)
        running -= 1

    result = await drive(op, LoadShape(concurrency=4, count=40, duration_s=None))
    assert result.ok == 40
    assert most == 4
    assert result.summary()["errors"] == 0


async def test_closed_loop_stops_at_duration() -> None:
    async def op() -> None:
        await asyncio.sleep(0.01)

    started = time.perf_counter()
    result = await drive(op, LoadShape(concurrency=2, duration_s=0.1))
    assert time.perf_counter() - started < 1.0
    assert 4 <= result.ok <= 30


async def test_failures_counted_by_kind_never_raised() -> None:
    calls = 0

    async def op() -> None:
        nonlocal calls
        calls += 1
        if calls % 3 == 0:
            raise Failed("http_503:channel_error", "try later")
        if calls % 5 == 0:
            raise RuntimeError("boom")

    result = await drive(op, LoadShape(concurrency=1, count=15, duration_s=None))
    summary = result.summary()
    assert summary["count"] == 8
    assert summary["error_kinds"] == {"http_503:channel_error": 5, "RuntimeError": 2}
    assert len(result.error_samples) == 5


async def test_operation_may_report_its_own_end() -> None:
    async def op() -> float:
        end = time.perf_counter()
        await asyncio.sleep(0.05)
        return end

    result = await drive(op, LoadShape(concurrency=1, count=2, duration_s=None))
    assert all(latency < 0.04 for latency in result.latencies_s)


async def test_timeouts_are_failures() -> None:
    async def op() -> None:
        await asyncio.sleep(1)

    shape = LoadShape(concurrency=2, count=2, duration_s=None, op_timeout_s=0.01)
    result = await drive(op, shape)
    assert result.errors == {"timeout": 2}


async def test_open_loop_keeps_its_schedule() -> None:
    async def op() -> None:
        await asyncio.sleep(0.02)

    started = time.perf_counter()
    result = await drive(op, LoadShape(rate=200, count=20, duration_s=None))
    elapsed = time.perf_counter() - started
    assert result.ok == 20
    # 20 starts 5 ms apart take ~0.1 s however slow each one is; a closed loop of one
    # worker would take 0.4 s.
    assert elapsed < 0.35


async def test_open_loop_counts_overload() -> None:
    async def op() -> None:
        await asyncio.sleep(0.2)

    shape = LoadShape(rate=1000, count=10, duration_s=None, max_in_flight=3)
    result = await drive(op, shape)
    assert result.ok == 3
    assert result.errors == {"overload": 7}


async def test_exhausted_stops_the_phase() -> None:
    left = 6

    async def op() -> None:
        nonlocal left
        if left == 0:
            raise Exhausted("no_paid_payment", "nothing left")
        left -= 1

    result = await drive(op, LoadShape(concurrency=3, duration_s=5.0))
    assert result.ok == 6
    assert result.elapsed_s < 1.0
    assert result.summary()["stopped_early"] is True
    assert result.errors["no_paid_payment"] == 1
