"""Pure statistics for the benchmark: percentiles, process CPU counters, Redis INFO parsing.

Nothing here does I/O, so every number the harness prints can be checked against a fixture.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

PERCENTILES: tuple[float, ...] = (50.0, 95.0, 99.0)


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """The `pct` percentile (0..100) of ascending `sorted_values`, linearly interpolated
    between the two nearest ranks (numpy's default "linear" method).

    Raises `ValueError` for an empty sequence or a percentile outside 0..100.
    """
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0.0 <= pct <= 100.0:
        raise ValueError(f"percentile {pct} is outside 0..100")
    rank = (len(sorted_values) - 1) * pct / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return float(sorted_values[low])
    weight = rank - low
    return float(sorted_values[low] * (1.0 - weight) + sorted_values[high] * weight)


def latency_summary(latencies_s: Iterable[float]) -> dict[str, float] | None:
    """p50/p95/p99, mean, min and max in milliseconds; `None` when nothing was measured."""
    values = sorted(v * 1000.0 for v in latencies_s)
    if not values:
        return None
    out = {f"p{int(p)}": percentile(values, p) for p in PERCENTILES}
    out["mean"] = sum(values) / len(values)
    out["min"] = values[0]
    out["max"] = values[-1]
    return {name: round(value, 3) for name, value in out.items()}


def difference(
    minuend: Mapping[str, float] | None, subtrahend: Mapping[str, float] | None
) -> dict[str, float] | None:
    """`minuend - subtrahend` at each percentile both have (router-added latency)."""
    if minuend is None or subtrahend is None:
        return None
    names = [f"p{int(p)}" for p in PERCENTILES]
    return {n: round(minuend[n] - subtrahend[n], 3) for n in names if n in minuend}


# --- process CPU ---------------------------------------------------------------------------


CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def parse_proc_stat(line: str) -> tuple[int, int]:
    """`(utime, stime)` in clock ticks from one `/proc/<pid>/stat` line.

    The second field (the command name, in parentheses) may itself hold spaces and
    parentheses, so fields are counted from the *last* `)`: utime and stime are fields 14
    and 15 of the line, the 12th and 13th after the name.
    """
    end = line.rfind(")")
    if end < 0:
        raise ValueError("not a /proc/<pid>/stat line: no ')'")
    rest = line[end + 1 :].split()
    if len(rest) < 13:
        raise ValueError("not a /proc/<pid>/stat line: too few fields")
    return int(rest[11]), int(rest[12])


def cpu_seconds(line: str, ticks_per_second: int = CLOCK_TICKS) -> float:
    """User plus system CPU seconds of the process a `/proc/<pid>/stat` line describes."""
    utime, stime = parse_proc_stat(line)
    return (utime + stime) / ticks_per_second


def host_jiffies(proc_stat: str) -> tuple[int, int]:
    """`(busy, total)` clock ticks of all CPUs from the text of `/proc/stat`.

    Its first line is `cpu  user nice system idle iowait irq softirq steal guest guest_nice`;
    idle and iowait are the not-busy ones (guest time is already inside user).
    """
    for line in proc_stat.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            ticks = [int(v) for v in fields[1:9]]
            total = sum(ticks)
            return total - ticks[3] - ticks[4], total
    raise ValueError("no aggregate 'cpu' line in /proc/stat")


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    """The machine's busy share (0..1) between two `host_jiffies` readings."""
    total = after[1] - before[1]
    if total <= 0:
        return None
    return round((after[0] - before[0]) / total, 3)


def cpu_ms_per_item(before_s: float, after_s: float, items: int) -> float | None:
    """CPU milliseconds per item between two readings; `None` when no item was done."""
    if items <= 0:
        return None
    return round((after_s - before_s) * 1000.0 / items, 4)


# --- Redis INFO ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RedisSnapshot:
    """What the harness reads from `INFO commandstats stats` at one moment."""

    calls: dict[str, int]
    """Calls per command name (`evalsha`, `hset`, `client|setinfo`, ...)."""
    reads: int
    """`total_reads_processed`: read events on client sockets, ≈ client round trips."""
    commands: int
    """`total_commands_processed`."""


def parse_info(text: str) -> dict[str, str]:
    """`INFO` text → `{field: value}` (section headers and blank lines dropped)."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        name, _, value = line.partition(":")
        out[name] = value
    return out


def parse_commandstats(text: str) -> dict[str, int]:
    """`cmdstat_hset:calls=3,usec=...` lines → `{"hset": 3}`; other lines are ignored."""
    out: dict[str, int] = {}
    for name, value in parse_info(text).items():
        if not name.startswith("cmdstat_"):
            continue
        fields = dict(item.partition("=")[::2] for item in value.split(","))
        out[name.removeprefix("cmdstat_")] = int(fields["calls"])
    return out


def snapshot(text: str) -> RedisSnapshot:
    """A `RedisSnapshot` from the text of `INFO commandstats stats`."""
    info = parse_info(text)
    return RedisSnapshot(
        calls=parse_commandstats(text),
        reads=int(info.get("total_reads_processed", "0")),
        commands=int(info.get("total_commands_processed", "0")),
    )


def add_snapshots(shots: Sequence[RedisSnapshot]) -> RedisSnapshot:
    """Several servers' snapshots as one (a cluster's primaries: their counters add up)."""
    calls: dict[str, int] = {}
    for shot in shots:
        for name, count in shot.calls.items():
            calls[name] = calls.get(name, 0) + count
    return RedisSnapshot(
        calls=calls,
        reads=sum(shot.reads for shot in shots),
        commands=sum(shot.commands for shot in shots),
    )


OWN_COMMANDS = frozenset({"info"})
"""Commands the harness itself sends while measuring: left out of every delta."""
REPLICATION_COMMANDS = frozenset({"replconf"})
"""What a replica sends its primary (an ACK a second): not client work, left out of every
delta, and each call's socket read taken out of the round trips."""


def redis_delta(
    before: RedisSnapshot, after: RedisSnapshot, items: int, own_reads: int = 1
) -> dict[str, object] | None:
    """Commands (by name) and round trips per item between two snapshots.

    `own_reads` is how many socket reads the harness's own INFO calls added in between (the
    second snapshot's request is counted in it; the first one's is not).
    """
    if items <= 0:
        return None
    by_command: dict[str, float] = {}
    total = 0
    replication = 0
    for name, calls in after.calls.items():
        if name in REPLICATION_COMMANDS:
            replication += calls - before.calls.get(name, 0)
            continue
        if name in OWN_COMMANDS:
            continue
        delta = calls - before.calls.get(name, 0)
        if delta > 0:
            by_command[name] = round(delta / items, 3)
            total += delta
    reads = after.reads - before.reads - own_reads - replication
    ordered = dict(sorted(by_command.items(), key=lambda kv: (-kv[1], kv[0])))
    return {
        "items": items,
        "commands_per_item": round(total / items, 3),
        "round_trips_per_item": round(max(reads, 0) / items, 3),
        "by_command": ordered,
    }
