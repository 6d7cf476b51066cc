"""`payrouter bench` end to end with tiny counts: every section of the report is there.

The numbers themselves are timings of this machine and are not checked, only their shape.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import Any

import pytest

from benchmarks.harness.report import render
from benchmarks.harness.scenarios import SCENARIOS

COUNT = 5
SPREAD_COUNT = 20
PERCENTILES = ("p50", "p95", "p99")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def run_bench(*args: str, timeout_s: float = 120) -> dict[str, Any]:
    """`payrouter bench ARGS --json` as a real process; its report."""
    argv = [sys.executable, "-m", "router", "bench", *args, "--json"]
    # Its own process group, which its children (redis-server, simulators, routers) join:
    # if it hangs, the whole group is killed and nothing is left behind.
    proc = subprocess.Popen(  # noqa: S603 - our own command, fixed arguments
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"payrouter bench did not finish within {timeout_s:g} s")
    assert proc.returncode == 0, err[-3000:]
    data: dict[str, Any] = json.loads(out)
    return data


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return run_bench(
        *("--count", str(COUNT), "--warmup", "2", "--concurrency", "2", "--processes", "1,2"),
        *("--spread-count", str(SPREAD_COUNT)),
    )


def check_spread(spread: dict[str, Any], primaries: int) -> None:
    """The spread section's shape: every command counted somewhere, shares between 0 and 1."""
    assert spread["payments"] == SPREAD_COUNT and spread["errors"] == 0
    assert spread["commands"] > SPREAD_COUNT and spread["from_lua"] > 0
    assert len(spread["nodes"]) == primaries
    assert spread["fair_slot_share"] == round(1 / 64, 4)
    busiest = spread["busiest_slot"]
    assert busiest["share"] == max(s["share"] for s in spread["top_slots"])
    assert busiest["example_key"].startswith("pr:") and _number(busiest["x_fair"])
    assert 1 / primaries <= spread["busiest_node_share"] <= 1
    assert sum(spread["nodes"].values()) == pytest.approx(1, abs=0.001)


@pytest.mark.timeout(150)
def test_every_scenario_measured(report: dict[str, Any]) -> None:
    assert list(report["scenarios"]) == list(SCENARIOS)
    for name, scenario in report["scenarios"].items():
        assert scenario["count"] == COUNT, (name, scenario["error_samples"])
        assert scenario["errors"] == 0, (name, scenario["error_samples"])
        assert _number(scenario["throughput_rps"]) and scenario["throughput_rps"] > 0
        assert all(_number(scenario["latency_ms"][p]) for p in PERCENTILES)
        cpu = scenario["cpu_ms_per_op"]
        assert {"router", "floor", "redis", "simulators", "client"} <= set(cpu)
        assert all(_number(v) for v in cpu.values())
        assert scenario["redis_per_op"]["items"] == COUNT
        assert isinstance(scenario["redis_per_op"]["by_command"], dict)


@pytest.mark.timeout(150)
def test_headline_sections(report: dict[str, Any]) -> None:
    assert set(report["router_added_latency_ms"]) == set(PERCENTILES)
    cpu = report["cpu"]
    assert cpu["payments"] == COUNT and cpu["router_processes"] == 1
    assert _number(cpu["router_ms_per_payment"]) and _number(cpu["floor_ms_per_payment"])
    # Five payments are a few clock ticks of CPU: a floor of zero leaves no ratio.
    assert cpu["ratio_router_to_floor"] is None or _number(cpu["ratio_router_to_floor"])
    redis = report["redis"]
    assert redis["payments"] == COUNT
    assert redis["commands_per_payment"] > 0 and redis["round_trips_per_payment"] > 0
    assert "evalsha" in redis["by_command"]
    assert redis["floor"]["by_command"].get("hset", 0) >= 1
    assert set(redis["idle_background"]) == {"window_s", "commands_per_s", "round_trips_per_s"}
    scale = report["scale_out"]
    assert set(scale["by_processes"]) == {"1", "2"}
    assert all(v["count"] == COUNT for v in scale["by_processes"].values())
    assert _number(scale["ratio"])
    assert isinstance(scale["machine_saturated_at"], list)
    assert report["spread"]["topology"] == "single"
    check_spread(report["spread"], primaries=1)


@pytest.mark.timeout(150)
def test_machine_command_and_text(report: dict[str, Any]) -> None:
    machine = report["machine"]
    assert isinstance(machine["cpu_model"], str) and machine["cores"] >= 1
    assert machine["python"].count(".") == 2 and machine["redis_server"] != "unknown"
    assert report["command"][:2] == ["payrouter", "bench"]
    assert report["settings"]["count"] == COUNT
    assert report["webhooks"]["received"] >= COUNT
    text = render(report)
    for name in SCENARIOS:
        assert name in text
    assert "router / floor CPU per payment" in text and "scale-out" in text
    assert "busiest slot" in text and "busiest node" in text


@pytest.mark.cluster
@pytest.mark.timeout(150)
def test_spread_on_a_cluster() -> None:
    # The bench starts its own 3 + 3 cluster with the launcher the cluster fixtures use.
    report = run_bench(
        *("--redis", "cluster", "--scenarios", "spread-wechat", "--processes", "1"),
        *("--count", str(COUNT), "--warmup", "2", "--concurrency", "2"),
        *("--spread-count", str(SPREAD_COUNT)),
    )
    assert report["settings"]["redis"] == "cluster"
    assert list(report["scenarios"]) == ["spread-wechat"]
    phase = report["scenarios"]["spread-wechat"]
    assert phase["count"] == COUNT and phase["errors"] == 0, phase["error_samples"]
    assert phase["redis_per_op"]["round_trips_per_item"] > 0
    assert {"redis", "redis-replicas"} <= set(phase["cpu_ms_per_op"])
    assert report["spread"]["topology"] == "cluster"
    check_spread(report["spread"], primaries=3)
    assert "busiest node" in render(report)
