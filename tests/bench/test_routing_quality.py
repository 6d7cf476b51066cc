"""`payrouter bench --routing-quality --quick` as a real process: every strategy and phase is
reported, and what does not depend on this machine's timing holds (the oracle always goes to
the phase's best account first; no payment fails while a healthy account exists)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from benchmarks.harness.routing_quality import PHASES, STRATEGIES
from benchmarks.harness.routing_stats import Sample, follow_s, render_routing, summarise
from tests.bench.test_smoke import run_bench

pytestmark = pytest.mark.e2e


def test_quick_routing_quality_run() -> None:
    report = run_bench("--routing-quality", "--quick", timeout_s=150)
    assert report["scenario"] == "routing-quality" and report["quick"] is True
    assert [p["best"] for p in report["phases"]] == [p.best for p in PHASES]
    assert set(report["strategies"]) == set(STRATEGIES)
    for strategy, found in report["strategies"].items():
        assert len(found["phases"]) == len(PHASES), strategy
        for phase in found["phases"]:
            assert phase["payments"] > 0
            assert 0.0 <= phase["first_to_best"] <= 1.0
            # Calls are counted per phase as the router made them: a create under way at a
            # phase's end counts in the next one, so only the total must cover every payment.
            assert phase["calls_per_payment"] > 0.0
            assert phase["p50_ms"] <= phase["p99_ms"]
        overall = found["overall"]
        assert overall["calls_per_payment"] >= 1.0 or overall["success"] < 1.0
    oracle = report["strategies"]["oracle"]
    assert all(p["first_to_best"] == 1.0 for p in oracle["phases"])
    # A healthy account exists in every phase: the failover behind each strategy keeps every
    # payment.
    for strategy in ("oracle", "adaptive"):
        failures = [p["failures"] for p in report["strategies"][strategy]["phases"]]
        assert all(not f for f in failures), (strategy, failures)
    text = render_routing(report)
    assert all(p.name in text for p in PHASES)


def sample(at_s: float, first: str, ok: bool = True) -> Sample:
    return Sample("adaptive", 0, at_s, ok, first, 10.0, None)


def test_follow_time_is_where_the_first_window_mostly_goes_to_the_best() -> None:
    before = [sample(i * 0.2, "a") for i in range(10)]
    # Four in five to b from 2.0 s on: the first window of 20 that is 80% b starts there.
    samples = before + [sample(2 + i * 0.2, "b" if i % 5 else "a") for i in range(30)]
    assert follow_s(samples, "b") == 2.0
    assert follow_s(samples[:15], "b") is None
    # Two in three never make 80%.
    samples = before + [sample(2 + i * 0.2, "b" if i % 3 else "a") for i in range(30)]
    assert follow_s(samples, "b") is None


def test_summary_pools_runs_per_phase() -> None:
    runs = [[sample(0, "a"), sample(1, "b", ok=False)], [sample(0, "a")]]
    calls = [{("adaptive", 0): 4, ("oracle", 0): 9}, {("adaptive", 0): 2}]
    found = summarise(runs, ["adaptive"], ["a"], calls)["adaptive"]
    phase = found["phases"][0]
    assert phase["payments"] == 3
    assert phase["calls_per_payment"] == 2.0
    assert phase["first_to_best"] == round(2 / 3, 4)
    assert phase["success"] == round(2 / 3, 4)
    assert phase["failures"] == {"?": 1}
    assert phase["first_by_account"] == {"a": 2, "b": 1}
    assert found["overall"]["first_to_best"] == phase["first_to_best"]
    hedged = replace(sample(2, "a"), hedged=True)
    assert (
        summarise([[sample(0, "a"), hedged]], ["adaptive"], ["a"], [{}])["adaptive"]["phases"][0][
            "hedged"
        ]
        == 0.5
    )
