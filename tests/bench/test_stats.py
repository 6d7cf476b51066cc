"""The benchmark's arithmetic: percentiles, /proc CPU counters, Redis INFO deltas."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarks.harness.stats import (
    RedisSnapshot,
    busy_share,
    cpu_ms_per_item,
    cpu_seconds,
    difference,
    host_jiffies,
    latency_summary,
    parse_commandstats,
    parse_info,
    parse_proc_stat,
    percentile,
    redis_delta,
    snapshot,
)


def test_percentile_interpolates_between_ranks() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 2.5
    assert percentile(values, 95) == pytest.approx(3.85)
    assert percentile(values, 99) == pytest.approx(3.97)
    assert percentile(values, 100) == 4.0


def test_percentile_of_one_value_and_exact_ranks() -> None:
    assert percentile([7.0], 99) == 7.0
    values = [float(v) for v in range(101)]
    assert [percentile(values, p) for p in (50, 95, 99)] == [50.0, 95.0, 99.0]


@pytest.mark.parametrize("pct", [-1.0, 100.5])
def test_percentile_outside_range(pct: float) -> None:
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0], pct)


def test_percentile_of_nothing() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_latency_summary_in_ms_unsorted_input() -> None:
    summary = latency_summary([0.004, 0.001, 0.003, 0.002])
    assert summary == {
        "p50": 2.5,
        "p95": 3.85,
        "p99": 3.97,
        "mean": 2.5,
        "min": 1.0,
        "max": 4.0,
    }
    assert latency_summary([]) is None


def test_difference_per_percentile() -> None:
    routed = {"p50": 20.0, "p95": 35.5, "p99": 50.0, "mean": 22.0}
    direct = {"p50": 3.5, "p95": 9.0, "p99": 12.25, "mean": 4.0}
    assert difference(routed, direct) == {"p50": 16.5, "p95": 26.5, "p99": 37.75}
    assert difference(routed, None) is None


STAT_LINE = (
    "4242 (payrouter (x) y) S 1 4242 4242 0 -1 4194560 8123 0 12 0 "
    "1507 230 0 0 20 0 3 0 325941 3133440 380 18446744073709551615"
)


def test_proc_stat_fields_counted_from_the_last_parenthesis() -> None:
    assert parse_proc_stat(STAT_LINE) == (1507, 230)
    assert cpu_seconds(STAT_LINE, ticks_per_second=100) == pytest.approx(17.37)


def test_proc_stat_rejects_other_text() -> None:
    with pytest.raises(ValueError, match="no '\\)'"):
        parse_proc_stat("4242 payrouter S 1")
    with pytest.raises(ValueError, match="too few"):
        parse_proc_stat("4242 (payrouter) S 1 2 3")


def test_proc_stat_of_this_process_agrees_with_os_times() -> None:
    sum(i * i for i in range(200_000))  # some CPU, so both counters have moved
    times = os.times()
    measured = cpu_seconds(Path(f"/proc/{os.getpid()}/stat").read_text())
    assert measured == pytest.approx(times.user + times.system, abs=0.05)


def test_cpu_ms_per_item() -> None:
    assert cpu_ms_per_item(10.0, 12.5, 1000) == 2.5
    assert cpu_ms_per_item(10.0, 12.5, 0) is None


INFO = """\
# Commandstats
cmdstat_hset:calls=12,usec=60,usec_per_call=5.00,rejected_calls=0,failed_calls=0
cmdstat_evalsha:calls=4,usec=400,usec_per_call=100.00,rejected_calls=0,failed_calls=1
cmdstat_client|setinfo:calls=2,usec=3,usec_per_call=1.50,rejected_calls=0,failed_calls=0
cmdstat_info:calls=3,usec=90,usec_per_call=30.00,rejected_calls=0,failed_calls=0

# Stats
total_connections_received:5
total_commands_processed:21
total_reads_processed:17
"""


def test_commandstats_parsing() -> None:
    assert parse_commandstats(INFO) == {
        "hset": 12,
        "evalsha": 4,
        "client|setinfo": 2,
        "info": 3,
    }
    assert parse_info(INFO)["total_connections_received"] == "5"
    taken = snapshot(INFO)
    assert (taken.reads, taken.commands) == (17, 21)


def test_redis_delta_per_item_without_the_harness_own_info() -> None:
    before = RedisSnapshot(calls={"hset": 2, "info": 1}, reads=10, commands=3)
    after = RedisSnapshot(
        calls={"hset": 22, "evalsha": 10, "get": 5, "info": 2}, reads=41, commands=40
    )
    delta = redis_delta(before, after, items=10)
    assert delta == {
        "items": 10,
        "commands_per_item": 3.5,
        "round_trips_per_item": 3.0,
        "by_command": {"hset": 2.0, "evalsha": 1.0, "get": 0.5},
    }
    assert redis_delta(before, after, items=0) is None


def test_redis_delta_leaves_out_replication_acks() -> None:
    # A cluster primary hears REPLCONF ACK from its replica once a second: one read each.
    before = RedisSnapshot(calls={"set": 0, "replconf": 5}, reads=100, commands=5)
    after = RedisSnapshot(calls={"set": 64, "replconf": 7}, reads=100 + 64 + 2 + 3, commands=71)
    delta = redis_delta(before, after, items=64, own_reads=3)
    assert delta is not None
    assert delta["by_command"] == {"set": 1.0}
    assert delta["round_trips_per_item"] == 1.0


PROC_STAT = """\
cpu  1000 50 300 8000 100 0 20 0 0 0
cpu0 500 25 150 4000 50 0 10 0 0 0
intr 12345
"""


def test_host_jiffies_and_busy_share() -> None:
    assert host_jiffies(PROC_STAT) == (1370, 9470)
    assert busy_share((1370, 9470), (1670, 10470)) == 0.3
    assert busy_share((1, 5), (1, 5)) is None
    with pytest.raises(ValueError, match="aggregate"):
        host_jiffies("intr 1\n")
