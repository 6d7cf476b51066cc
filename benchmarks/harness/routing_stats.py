"""The routing-quality scenario's numbers: one `Sample` per create, summed up per strategy and
phase over every run, and the table `payrouter bench --routing-quality` prints."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.harness.report import table

FOLLOW_WINDOW = 20
"""Payments in the sliding window that decides when a strategy has followed a change."""
FOLLOW_SHARE = 0.8
"""The share of that window's first attempts that must go to the phase's best account."""


@dataclass(frozen=True)
class Sample:
    """One create as the merchant saw it."""

    strategy: str
    phase: int
    at_s: float
    """Seconds after the phase began."""
    ok: bool
    first: str | None
    """The account tried first (None: none was)."""
    ms: float
    code: str | None
    hedged: bool = False
    """A second create went out while the first was still under way (`adaptive.hedge`)."""


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def follow_s(samples: Sequence[Sample], best: str) -> float | None:
    """When the first window of `FOLLOW_WINDOW` payments (in order of creation) with at least
    `FOLLOW_SHARE` of first attempts to `best` began; None: never within the phase."""
    ordered = sorted(samples, key=lambda s: s.at_s)
    hits = [s.first == best for s in ordered]
    for start in range(max(0, len(ordered) - FOLLOW_WINDOW + 1)):
        if sum(hits[start : start + FOLLOW_WINDOW]) >= FOLLOW_SHARE * FOLLOW_WINDOW:
            return round(ordered[start].at_s, 1)
    return None


Calls = Mapping[tuple[str, int], int]
"""One run's channel calls per (strategy, phase)."""


def summarise(
    runs: Sequence[Sequence[Sample]],
    strategies: Sequence[str],
    bests: Sequence[str],
    calls: Sequence[Calls],
) -> dict[str, Any]:
    """Per strategy: per phase and over all phases, every run pooled (follow times: each
    run's, listed). `calls`: each run's channel calls per strategy and phase."""
    out: dict[str, Any] = {}
    for strategy in strategies:
        phases = []
        pooled: list[Sample] = []
        for index, best in enumerate(bests):
            mine = [[s for s in run if s.strategy == strategy and s.phase == index] for run in runs]
            flat = [s for run in mine for s in run]
            pooled += flat
            made = sum(run.get((strategy, index), 0) for run in calls)
            figures = _figures(flat, made, best)
            phases.append(figures | {"follow_s": [follow_s(r, best) for r in mine]})
        best_of = {index: best for index, best in enumerate(bests)}
        made = sum(n for run in calls for (s, _), n in run.items() if s == strategy)
        overall = _figures(pooled, made, None, best_of)
        out[strategy] = {"phases": phases, "overall": overall}
    return out


def _figures(
    samples: Sequence[Sample],
    calls: int,
    best: str | None,
    best_of: Mapping[int, str] | None = None,
) -> dict[str, Any]:
    n = len(samples)
    if n == 0:
        return {"payments": 0}
    firsts = sum(1 for s in samples if s.first == (best or (best_of or {}).get(s.phase)))
    latencies = [s.ms for s in samples]
    return {
        "payments": n,
        "success": round(sum(s.ok for s in samples) / n, 4),
        "first_to_best": round(firsts / n, 4),
        "calls_per_payment": round(calls / n, 3),
        "hedged": round(sum(s.hedged for s in samples) / n, 4),
        "p50_ms": round(_percentile(latencies, 0.5) or 0.0, 1),
        "p99_ms": round(_percentile(latencies, 0.99) or 0.0, 1),
        "failures": dict(Counter(s.code or "?" for s in samples if not s.ok)),
        "first_by_account": dict(sorted(Counter(s.first or "-" for s in samples).items())),
    }


def _pct(value: object) -> str:
    return f"{value * 100:.1f}%" if isinstance(value, float | int) else "-"


def _follow(values: Sequence[float | None]) -> str:
    return ", ".join("never" if v is None else f"{v:g}" for v in values)


def render_routing(report: Mapping[str, Any]) -> str:
    """The report as text: one table per phase, then the totals."""
    lines = [
        f"routing quality: {report['runs']} run(s), phases of {report['phase_s']:g} s, "
        f"{report['rate_per_strategy']:g} creates/s per strategy, fees {report['fees_pct']}",
    ]
    headers = [
        "strategy",
        "success",
        "first→best",
        "calls/pay",
        "hedged",
        "p50 ms",
        "p99 ms",
        "follow s",
    ]
    for index, phase in enumerate(report["phases"]):
        lines += ["", f"phase {index + 1}: {phase['name']} (best: {phase['best']})"]
        rows = []
        for strategy, found in report["strategies"].items():
            f = found["phases"][index]
            rows.append(
                [
                    strategy,
                    _pct(f.get("success")),
                    _pct(f.get("first_to_best")),
                    f"{f.get('calls_per_payment', 0):.3f}",
                    _pct(f.get("hedged")),
                    f"{f.get('p50_ms', 0):.0f}",
                    f"{f.get('p99_ms', 0):.0f}",
                    _follow(f.get("follow_s", [])),
                ]
            )
        lines += table(headers, rows)
    lines += ["", "all phases"]
    rows = []
    for strategy, found in report["strategies"].items():
        f = found["overall"]
        rows.append(
            [
                strategy,
                _pct(f.get("success")),
                _pct(f.get("first_to_best")),
                f"{f.get('calls_per_payment', 0):.3f}",
                _pct(f.get("hedged")),
                f"{f.get('p50_ms', 0):.0f}",
                f"{f.get('p99_ms', 0):.0f}",
                "",
            ]
        )
    lines += table(headers, rows)
    return "\n".join(lines)
