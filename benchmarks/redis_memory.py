"""Redis memory and drain lag at a steady payment rate, with a short retention.

    .venv/bin/python -m benchmarks.redis_memory [--rate 200] [--seconds 90] [--retention 5]
        [--database postgres|sqlite]

Starts a private redis-server and (by default) a private PostgreSQL, then for `--seconds`
writes `--rate` paid payments a second straight into the store (each: created, pending,
succeeded: what the API and a channel's notification write) while one drainer runs its own
loop (`Drainer.run`: drain, retire, claim) and the webhook dispatcher settles each payment's
event (no endpoint is set: `no_endpoint`, final) in the same event loop, as in a router
process, with `PAYROUTER_REDIS_RETENTION` = `--retention`. Every `--sample` seconds it reads Redis's
`INFO memory` used_memory, DBSIZE and how many payments Redis still holds; every 0.5 s the
drain lag as `payrouter_record_lag_seconds` computes it (`router.record.drain.set_lag`).

Prints bytes per payment held in Redis (in flight or within retention), the memory's slope
over the last half of the run (flat at steady state: about 0 bytes/s), and the lag's
p50/p99/max. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks.drain_throughput import StandIn, paid, start_redis
from benchmarks.harness.postgres import start_postgres
from benchmarks.harness.stats import percentile
from router.clock import Clock
from router.record import open_record
from router.record.drain import RETIRE_S, Drainer
from router.store import Store, open_store
from router.webhooks.dispatcher import Dispatcher

TICK_S = 0.05
"""How often the writer catches up with `rate × elapsed`: small, so the rate is steady."""
LAG_EVERY_S = 0.5
RETIRED = "payrouter_record_retired_total"


@dataclass
class Sample:
    """One look at Redis during the run."""

    at_s: float
    used_memory: int
    keys: int
    held: int
    """Payments written and not yet retired from Redis."""


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y) points (0 for fewer than two distinct x)."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in points) / sxx


async def _used_memory(store: Store) -> tuple[int, int]:
    redis: Any = store.redis
    info = await redis.info("memory")
    return int(info["used_memory"]), int(await redis.dbsize())


async def run(
    redis_url: str,
    database_url: str | None,
    folder: Path,
    *,
    rate: float,
    seconds: float,
    retention_s: float,
    sample_s: float = 2.0,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Write `rate` paid payments a second for `seconds` with a drainer running; the
    samples and their summary (see the module's docstring)."""
    clock = Clock()
    store = await open_store(redis_url, clock)
    record = await open_record(database_url, folder)
    rt = StandIn(store)
    rt.settings = replace(rt.settings, redis_retention_s=retention_s)
    registry = rt.metrics.registry
    try:
        await record.migrate()
        drainer = Drainer(rt, record)  # type: ignore[arg-type]
        drainer.retire_s = min(RETIRE_S, retention_s)
        base_memory, base_keys = await _used_memory(store)
        stop_writing, stop_draining = asyncio.Event(), asyncio.Event()
        written = 0
        started = time.monotonic()

        async def write() -> None:
            nonlocal written
            while not stop_writing.is_set():
                due = int(rate * (time.monotonic() - started))
                while written < due:
                    first, written = written, min(due, written + 20)
                    await asyncio.gather(*(paid(store, clock, n) for n in range(first, written)))
                await asyncio.sleep(TICK_S)

        lags: list[float] = []
        samples: list[Sample] = []

        async def watch() -> None:
            next_sample = 0.0
            while not stop_writing.is_set():
                oldest = await store.changes.reader.oldest_ms()
                lags.append(0.0 if oldest is None else max(0.0, (clock.now_ms() - oldest) / 1000))
                at = time.monotonic() - started
                if at >= next_sample:
                    next_sample += sample_s
                    used, keys = await _used_memory(store)
                    retired = registry.get_sample_value(RETIRED, {"kind": "pay"}) or 0
                    held = written - int(retired)
                    samples.append(Sample(at, used - base_memory, keys - base_keys, held))
                await asyncio.sleep(LAG_EVERY_S)

        dispatcher = Dispatcher(rt)  # type: ignore[arg-type]
        draining = asyncio.gather(drainer.run(stop_draining), dispatcher.run(stop_draining))
        tasks = [asyncio.create_task(write()), asyncio.create_task(watch())]
        await asyncio.sleep(seconds)
        stop_writing.set()
        await asyncio.gather(*tasks)
        stop_draining.set()
        await draining
        await drainer.close()
        await dispatcher.close()
        took = time.monotonic() - started
    finally:
        await record.close()
        await store.close()
    report = summary(samples, lags, retention_s + drainer.retire_s)
    report.update(
        database=record.description,
        rate=rate,
        written=written,
        achieved_rate=written / took,
        retention_s=retention_s,
        seconds=took,
        base_memory=base_memory,
    )
    say(table(report))
    return report


def summary(samples: list[Sample], lags: list[float], settle_s: float) -> dict[str, Any]:
    """Bytes per held payment after the first retention window (a payment leaves Redis
    `settle_s` at most after it is paid), the last half's memory slope, the lag's spread."""
    steady = [s for s in samples if s.at_s >= settle_s] or samples
    last_half = samples[len(samples) // 2 :]
    per_payment = sorted(s.used_memory / s.held for s in steady if s.held > 0)
    ordered = sorted(lags)
    memory = [s.used_memory for s in steady]
    return {
        "samples": [vars(s) for s in samples],
        "bytes_per_payment": percentile(per_payment, 50) if per_payment else None,
        "steady_memory_min": min(memory) if memory else None,
        "steady_memory_max": max(memory) if memory else None,
        "held_last": samples[-1].held if samples else None,
        "slope_last_half_bytes_s": slope([(s.at_s, float(s.used_memory)) for s in last_half]),
        "slope_last_half_held_s": slope([(s.at_s, float(s.held)) for s in last_half]),
        "lag_p50_s": percentile(ordered, 50) if ordered else None,
        "lag_p99_s": percentile(ordered, 99) if ordered else None,
        "lag_max_s": ordered[-1] if ordered else None,
        "lag_samples": len(ordered),
    }


def table(report: dict[str, Any]) -> str:
    """The report as text: the samples, then the summary."""
    lines = [f"{'t s':>6} {'used_memory Δ':>14} {'keys Δ':>8} {'held':>7}"]
    for s in report["samples"]:
        lines.append(f"{s['at_s']:6.1f} {s['used_memory']:14,} {s['keys']:8,} {s['held']:7,}")
    per = report["bytes_per_payment"]
    lines += [
        f"database: {report['database']}; retention {report['retention_s']:g} s",
        f"written: {report['written']:,} paid payments in {report['seconds']:.1f} s "
        f"({report['achieved_rate']:,.0f}/s of {report['rate']:,.0f}/s asked)",
        f"bytes per payment held in Redis (median after the first retention window): {per:,.0f}"
        if per is not None
        else "bytes per payment: no sample",
        f"steady used_memory Δ: {report['steady_memory_min']:,} .. "
        f"{report['steady_memory_max']:,} bytes over the baseline {report['base_memory']:,}",
        f"slope over the last half: {report['slope_last_half_bytes_s']:,.0f} bytes/s, "
        f"{report['slope_last_half_held_s']:,.1f} held payments/s",
        f"drain lag over {report['lag_samples']} samples: p50 {report['lag_p50_s']:.3f} s, "
        f"p99 {report['lag_p99_s']:.3f} s, max {report['lag_max_s']:.3f} s",
    ]
    return "\n".join(lines)


async def main(args: Any) -> None:
    folder = Path(tempfile.mkdtemp(prefix="payrouter-memory-"))
    redis, redis_url = start_redis(folder)
    server = start_postgres() if args.database == "postgres" else None
    try:
        await asyncio.sleep(0.3)
        url = server.create_database("memory") if server else None
        await run(
            redis_url,
            url,
            folder,
            rate=args.rate,
            seconds=args.seconds,
            retention_s=args.retention,
            sample_s=args.sample,
        )
    finally:
        redis.terminate()
        redis.wait(timeout=10)
        if server is not None:
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def parse() -> Any:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="paid payments a second")
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--retention", type=float, default=5.0, help="seconds")
    parser.add_argument("--sample", type=float, default=2.0, help="seconds between samples")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="postgres")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse()))
