"""One benchmark run: set up, measure every scenario, put every number in one report.

Each scenario is a phase: a warm-up (not measured), then CPU and Redis counters are read,
the load runs, and the counters are read again. Phases run one after another, never at the
same time, so each one's counters belong to it alone (apart from the routers' background
loops, whose idle rate is measured once and reported beside them).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.harness import procs
from benchmarks.harness.load import drive
from benchmarks.harness.probes import CpuWatch, MonitorTap
from benchmarks.harness.scenarios import (
    REFUNDS_PER_PAYMENT,
    SPREAD_MERCHANTS,
    Receiver,
    Target,
    lifecycle_wechat,
    operation,
    spread_wechat,
)
from benchmarks.harness.setup import BenchOptions, Environment, attach, start_everything
from benchmarks.harness.stats import difference, redis_delta
from router.store.keys import PARTITIONS

Say = Callable[[str], None]
IDLE_WINDOW_S = 1.0
OTHERS_NOTE_SHARE = 0.10
SATURATED = 0.9
"""A phase whose measured processes kept this share of all cores busy was machine-bound."""
REFUNDS_PER_S_GUESS = 500
"""Paid payments made for a refund phase without a lifecycle phase before it assume this."""
REDIS_NOTE = (
    "Redis's own counters over the phase, divided by payments: INFO commandstats calls per "
    "command (commands that Lua scripts run are counted under their own names as well as the "
    "EVALSHA that ran them) and INFO stats total_reads_processed as round trips (the server's "
    "socket read events: one per client request or pipelined batch, so ≈ client round trips). "
    "The routers' background loops (re-query worker, webhook dispatcher) are included; their "
    "idle rate is in idle_background. On a cluster every counter is summed over the primaries "
    "(replicas' replication traffic is not counted), so a batch sent to three nodes is three "
    "round trips."
)
SPREAD_NOTE = (
    "MONITOR on every primary during {count} spread-wechat creates ({merchants} merchants, the "
    "first sending half), apart from the throughput phases (MONITOR slows Redis). Each command "
    "counts in the slot of its first key (EVAL/EVALSHA: the first key after numkeys; commands "
    "run by Lua scripts count too) and on the node it ran on; the routers' background loops "
    "are included. Shares are of every command counted; a slot's fair share is 1/{partitions} "
    "(payments spread over {partitions} partitions, one slot each), x_fair = share / fair "
    "share; a node's fair share is 1/primaries. unkeyed: commands with no key (PING, MULTI, "
    "...); multi_slot: commands whose keys span slots (one server only)."
)
CPU_NOTE = (
    "user+system CPU from /proc/<pid>/stat (utime+stime) of each process, delta over the "
    "phase, divided by successful operations; client = this harness process (os.times)."
)


def machine(redis_version: str) -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "redis_server": redis_version,
        "platform": platform.platform(),
    }


class Run:
    """The phases of one run against one `Environment`."""

    def __init__(self, options: BenchOptions, env: Environment, say: Say) -> None:
        self.options = options
        self.env = env
        self.say = say
        self.started = time.perf_counter()
        # Routers started here: the first --processes count; given ones (--target): all.
        self.first = options.processes[0] if env.grow else len(env.target.routers)

    def watch(self, routers: int) -> CpuWatch:
        pids = dict(self.env.parties)
        if self.env.router_pids:
            # Every running router: an idle one still delivers its share of webhooks.
            pids["router"] = list(self.env.router_pids)
        if self.env.floor_pid is not None:
            pids["floor"] = [self.env.floor_pid]
        return CpuWatch(pids)

    async def phase(self, name: str, target: Target, routers: int) -> dict[str, Any]:
        """Warm up, then measure one scenario: latency, throughput, CPU and Redis per op."""
        op = operation(name, target)
        shape = self.options.shape
        if self.options.warmup > 0:
            await drive(op, shape.warmup(self.options.warmup))
        watch = self.watch(routers)
        redis = self.env.redis
        cpu_before = watch.read()
        redis_before = await redis.snapshot() if redis else None
        result = await drive(op, shape)
        redis_after = await redis.snapshot() if redis else None
        cpu_after = watch.read()
        summary = result.summary()
        summary["processes"] = routers
        summary["cpu_ms_per_op"] = CpuWatch.per_item(cpu_before, cpu_after, result.ok)
        summary["machine_busy"] = CpuWatch.busy(cpu_before, cpu_after, result.elapsed_s)
        summary["host_busy"] = CpuWatch.host_busy(cpu_before, cpu_after)
        self.check_quiet(name, summary)
        summary["redis_per_op"] = (
            redis_delta(redis_before, redis_after, result.ok, own_reads=len(redis.nodes))
            if redis is not None and redis_before is not None and redis_after is not None
            else None
        )
        self.say(
            f"[{time.perf_counter() - self.started:6.1f}s] {name} ({routers}p): "
            f"{result.ok} ok, {summary['errors']} errors, {summary['throughput_rps']} req/s"
        )
        return summary

    def check_quiet(self, name: str, summary: dict[str, Any]) -> None:
        """Note a phase during which processes outside the benchmark used the machine."""
        ours, host = summary["machine_busy"], summary["host_busy"]
        if ours is not None and host is not None and host - ours > OTHERS_NOTE_SHARE:
            self.env.notes.append(
                f"{name} ({summary['processes']}p): processes outside the benchmark kept "
                f"{host - ours:.0%} of the machine busy: its numbers are disturbed"
            )

    async def idle_background(self) -> dict[str, float] | None:
        """Redis commands and reads per second with no load (the routers' own loops)."""
        redis = self.env.redis
        if redis is None:
            return None
        before = await redis.snapshot()
        await asyncio.sleep(IDLE_WINDOW_S)
        after = await redis.snapshot()
        delta = redis_delta(before, after, 1, own_reads=len(redis.nodes))
        assert delta is not None
        return {
            "window_s": IDLE_WINDOW_S,
            "commands_per_s": float(str(delta["commands_per_item"])) / IDLE_WINDOW_S,
            "round_trips_per_s": float(str(delta["round_trips_per_item"])) / IDLE_WINDOW_S,
        }

    async def fill_paid(self) -> None:
        """Enough paid payments for the refund phase when no lifecycle phase made them."""
        shape = self.options.shape
        if shape.count is not None:
            wanted = shape.count
        else:  # above any refund rate seen here, so the phase rarely runs out
            wanted = math.ceil((shape.rate or REFUNDS_PER_S_GUESS) * shape.window_s)
        wanted += self.options.warmup
        payments = max(shape.concurrency, math.ceil(wanted / REFUNDS_PER_PAYMENT))
        payments = min(payments, 400) - len(self.env.target.paid)
        if payments > 0:
            self.say(f"paying {payments} payments for the refund phase")
            await drive(lifecycle_wechat(self.env.target), shape.warmup(payments))

    async def scenarios(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        target = self.env.target.using(self.env.target.routers[: self.first])
        for name in self.options.scenarios:
            if name == "floor-wechat" and target.floor_url is None:
                continue
            if name == "direct-wechat" and target.direct is None:
                continue
            if name == "spread-wechat" and not target.spread_keys:
                self.env.notes.append("spread-wechat not run: give --redis-url with --target")
                continue
            if name == "refund-wechat":
                await self.fill_paid()
            out[name] = await self.phase(name, target, self.first)
        return out

    async def spread(self) -> dict[str, Any] | None:
        """Where the commands of `spread_count` spread creates land: MONITOR on every primary,
        a measurement of its own after the throughput phases."""
        redis = self.env.redis
        target = self.env.target.using(self.env.target.routers[: self.first])
        if redis is None or not target.spread_keys:
            return None
        count = self.options.spread_count
        tap = MonitorTap(redis.addresses)
        await tap.start()
        try:
            result = await drive(spread_wechat(target), self.options.shape.warmup(count))
        finally:
            tally = await tap.stop()
        nodes = [address.name for address in redis.addresses]
        summary = tally.summary(PARTITIONS, result.ok, nodes)
        self.say(
            f"[{time.perf_counter() - self.started:6.1f}s] spread: {result.ok} creates, "
            f"{summary['commands']} commands on {len(nodes)} node(s)"
        )
        return summary | {
            "topology": self.options.redis if not self.options.targets else "target",
            "errors": sum(result.errors.values()),
            "note": SPREAD_NOTE.format(
                count=count, merchants=SPREAD_MERCHANTS, partitions=PARTITIONS
            ),
        }

    async def scale_out(self, measured: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
        grow = self.env.grow
        if grow is None or "create-qr-wechat" not in self.options.scenarios:
            return None
        counts = sorted(set(self.options.processes))
        if len(counts) < 2:
            return None
        by: dict[str, dict[str, Any]] = {}
        for p in counts:
            if p == self.first and "create-qr-wechat" in measured:
                summary = measured["create-qr-wechat"]
            else:
                if len(self.env.target.routers) < p:
                    await grow(p)
                target = self.env.target.using(self.env.target.routers[:p])
                summary = await self.phase("create-qr-wechat", target, p)
            by[str(p)] = {
                "count": summary["count"],
                "errors": summary["errors"],
                "throughput_rps": summary["throughput_rps"],
                "latency_ms": summary["latency_ms"],
                "router_cpu_ms_per_payment": summary["cpu_ms_per_op"].get("router"),
                "machine_busy": summary["machine_busy"],
                "host_busy": summary["host_busy"],
            }
        low, high = by[str(counts[0])], by[str(counts[-1])]
        ratio = high["throughput_rps"] / low["throughput_rps"] if low["throughput_rps"] else None
        saturated = [p for p, v in by.items() if (v["machine_busy"] or 0) >= SATURATED]
        return {
            "scenario": "create-qr-wechat",
            "by_processes": by,
            "ratio": round(ratio, 3) if ratio is not None else None,
            "ratio_of": f"{counts[-1]} processes / {counts[0]}",
            "machine_saturated_at": [int(p) for p in saturated],
        }


def headline_cpu(scenarios: dict[str, dict[str, Any]], processes: int) -> dict[str, Any] | None:
    router = scenarios.get("create-qr-wechat", {}).get("cpu_ms_per_op", {}).get("router")
    floor = scenarios.get("floor-wechat", {}).get("cpu_ms_per_op", {}).get("floor")
    if router is None and floor is None:
        return None
    return {
        "phase": "create-qr-wechat",
        "router_processes": processes,
        "payments": scenarios.get("create-qr-wechat", {}).get("count"),
        "router_ms_per_payment": router,
        "floor_ms_per_payment": floor,
        "ratio_router_to_floor": round(router / floor, 2) if router and floor else None,
        "source": CPU_NOTE,
    }


def headline_redis(
    scenarios: dict[str, dict[str, Any]], idle: dict[str, float] | None
) -> dict[str, Any] | None:
    measured = scenarios.get("create-qr-wechat", {}).get("redis_per_op")
    if measured is None:
        return None
    floor = scenarios.get("floor-wechat", {}).get("redis_per_op")
    # The primaries' own CPU (/proc), so the shard arithmetic can use a measured cost.
    cpu_ms = scenarios["create-qr-wechat"].get("cpu_ms_per_op", {}).get("redis")
    commands = measured["commands_per_item"]
    return {
        "phase": "create-qr-wechat",
        "payments": measured["items"],
        "commands_per_payment": commands,
        "round_trips_per_payment": measured["round_trips_per_item"],
        "cpu_ms_per_payment": cpu_ms,
        "cpu_us_per_command": round(cpu_ms * 1000 / commands, 2) if cpu_ms and commands else None,
        "by_command": measured["by_command"],
        "floor": floor,
        "idle_background": idle,
        "note": REDIS_NOTE,
    }


def settings_of(options: BenchOptions) -> dict[str, Any]:
    shape = options.shape
    return {
        "mode": "rate" if shape.rate else "concurrency",
        "concurrency": shape.concurrency,
        "rate_per_s": shape.rate,
        "duration_s": shape.duration_s,
        "count": shape.count,
        "warmup": options.warmup,
        "processes": list(options.processes),
        "scenarios": list(options.scenarios),
        "targets": list(options.targets),
        "time_factor": None if options.targets else options.time_factor,
        "redis": "target" if options.targets else options.redis,
        "spread_count": options.spread_count,
        "idempotency_key": True,
    }


async def run_bench(options: BenchOptions, say: Say) -> dict[str, Any]:
    """Run everything `options` asks for; return the report (see `benchmarks.harness.report`)."""
    wall = time.perf_counter()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    workdir = Path(tempfile.mkdtemp(prefix="payrouter-bench-"))
    children = procs.Children(workdir)
    receiver = Receiver()
    ok = False
    try:
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=60)
        ) as session:
            await receiver.start()
            setup = attach if options.targets else start_everything
            env = await setup(options, session, children, receiver, say)
            say(f"set up in {time.perf_counter() - wall:.1f} s")
            run = Run(options, env, say)
            idle = await run.idle_background()
            scenarios = await run.scenarios()
            spread = await run.spread()
            scale = await run.scale_out(scenarios)
            if env.redis is not None:
                await env.redis.close()
        ok = True
    finally:
        await receiver.stop()
        await children.stop_all()
        if ok:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            say(f"logs kept in {workdir}")
    direct = scenarios.get("direct-wechat", {}).get("latency_ms")
    routed = scenarios.get("create-qr-wechat", {}).get("latency_ms")
    return {
        "command": list(options.command),
        "started_at": started_at,
        "elapsed_s": round(time.perf_counter() - wall, 1),
        "machine": machine(env.redis_version),
        "settings": settings_of(options),
        "scenarios": scenarios,
        "router_added_latency_ms": difference(routed, direct),
        "cpu": headline_cpu(scenarios, run.first),
        "redis": headline_redis(scenarios, idle),
        "spread": spread,
        "scale_out": scale,
        "webhooks": {"received": receiver.received, "unmatched": receiver.unmatched},
        "notes": env.notes,
    }
