"""Driving one operation at a fixed concurrency or a fixed rate, bounded in count and time.

- Closed loop (`concurrency`): that many workers each start the next operation as soon as
  their last one ends. Latency is from the operation's start to its end.
- Open loop (`rate`): operations start on a fixed schedule whatever the answers do, with at
  most `max_in_flight` outstanding (beyond that an operation is counted as an error,
  `overload`). Latency is from the *scheduled* start, so queueing in the client counts.

An operation returns normally on success, optionally with its own end time (for example the
moment a webhook arrived), and raises on failure; failures are counted by kind, never fatal.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from benchmarks.harness.stats import latency_summary

Op = Callable[[], Awaitable[float | None]]
"""One operation; returns its end time (`time.perf_counter()`) or None for "now"."""

COUNT_CAP = 1_000_000
"""Most operations one phase starts when it is bounded only by time."""


class Failed(Exception):
    """An operation that got an answer it did not want: counted under `kind`."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


class Exhausted(Failed):
    """Nothing left to operate on (no refundable payment): the phase stops early."""


@dataclass(frozen=True)
class LoadShape:
    """How one phase is driven."""

    concurrency: int = 8
    rate: float | None = None
    """Operations per second (open loop); None: closed loop at `concurrency`."""
    duration_s: float | None = 8.0
    """Stop starting operations after this long; None: only `count` bounds the phase."""
    count: int | None = None
    """Stop after this many operations; None: only the duration bounds the phase."""
    time_cap_s: float = 90.0
    """Hard limit on a phase's length whatever else was asked."""
    op_timeout_s: float = 30.0
    max_in_flight: int = 512

    @property
    def limit(self) -> int:
        return self.count if self.count is not None else COUNT_CAP

    @property
    def window_s(self) -> float:
        if self.duration_s is None:
            return self.time_cap_s
        return min(self.duration_s, self.time_cap_s)

    def warmup(self, count: int) -> LoadShape:
        """The same shape for `count` operations (rate mode drops to closed loop)."""
        return replace(self, count=count, duration_s=None, rate=None)


@dataclass
class PhaseResult:
    """What one phase measured."""

    latencies_s: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    exhausted: bool = False

    @property
    def ok(self) -> int:
        return len(self.latencies_s)

    def fail(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(f"{kind}: {detail}"[:300])

    def summary(self) -> dict[str, object]:
        """Count, errors, throughput and latency percentiles, as printed and in `--json`."""
        errors = sum(self.errors.values())
        throughput = self.ok / self.elapsed_s if self.elapsed_s > 0 else 0.0
        return {
            "count": self.ok,
            "errors": errors,
            "error_kinds": dict(self.errors),
            "error_samples": list(self.error_samples),
            "elapsed_s": round(self.elapsed_s, 3),
            "stopped_early": self.exhausted,
            "throughput_rps": round(throughput, 2),
            "latency_ms": latency_summary(self.latencies_s),
        }


async def _one(op: Op, started: float, shape: LoadShape, result: PhaseResult) -> None:
    try:
        end = await asyncio.wait_for(op(), timeout=shape.op_timeout_s)
    except Exhausted as exc:
        if not result.exhausted:
            result.exhausted = True
            result.fail(exc.kind, exc.detail)
    except Failed as exc:
        result.fail(exc.kind, exc.detail)
    except TimeoutError:
        result.fail("timeout", f"no outcome within {shape.op_timeout_s} s")
    except Exception as exc:  # a benchmark counts failures of every kind; it never stops
        result.fail(type(exc).__name__, str(exc))
    else:
        result.latencies_s.append((end if end is not None else time.perf_counter()) - started)


async def _closed(op: Op, shape: LoadShape, result: PhaseResult, deadline: float) -> None:
    issued = 0

    async def worker() -> None:
        nonlocal issued
        while issued < shape.limit and time.perf_counter() < deadline and not result.exhausted:
            issued += 1
            await _one(op, time.perf_counter(), shape, result)

    await asyncio.gather(*(worker() for _ in range(max(1, shape.concurrency))))


async def _open(
    op: Op, shape: LoadShape, result: PhaseResult, deadline: float, rate: float
) -> None:
    interval = 1.0 / rate
    start = time.perf_counter()
    tasks: set[asyncio.Task[None]] = set()
    for index in range(shape.limit):
        scheduled = start + index * interval
        if scheduled >= deadline or result.exhausted:
            break
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(tasks) >= shape.max_in_flight:
            result.fail("overload", f"{shape.max_in_flight} operations already in flight")
            continue
        task = asyncio.create_task(_one(op, scheduled, shape, result))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)


async def drive(op: Op, shape: LoadShape) -> PhaseResult:
    """Run `op` as `shape` says; return the latencies and failures."""
    result = PhaseResult()
    started = time.perf_counter()
    deadline = started + shape.window_s
    if shape.rate is not None and shape.rate > 0:
        await _open(op, shape, result, deadline, shape.rate)
    else:
        await _closed(op, shape, result, deadline)
    result.elapsed_s = time.perf_counter() - started
    return result
