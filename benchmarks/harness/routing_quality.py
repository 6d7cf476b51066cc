"""`payrouter bench --routing-quality`: how well each strategy follows shifting channel health.

Three WeChat Pay accounts (`a`, `b`, `c`, fees 0.38%, 0.55% and 0.6%), each on its own
simulator, go through phases of shifting error rate, latency and outage (`PHASES`). One
router (in this process, on a private redis-server, over real HTTP on loopback) routes every
strategy side by side: each strategy has its own three accounts on the same three
simulators, so it keeps its own health and breakers while meeting the same faults at the
same moments. The oracle is `priority` over the phase's accounts best first: it always knows
the best account. Each strategy gets `rate` creates per second (open loop).

Per strategy and phase (`routing_stats.summarise`): merchant-visible success, the share of
first attempts that went to the phase's best account, channel calls per payment (every call
the router made to the strategy's accounts during the phase, as its own
`payrouter_channel_calls_total` counts them: creates, hedges, probes, queries and closes,
the worker's included), the share of payments hedged, p50/p99 create latency, and how long
the strategy took to follow the change (the first window of 20 payments with 80% of first
attempts to the best account).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from benchmarks.harness.procs import Children, free_port, start_redis
from benchmarks.harness.routing_stats import Sample, summarise
from channels.sim.kit import SimulatorSettings
from channels.wechat.sandbox import ensure_sandbox
from channels.wechat.sim.app import build_app as build_simulator
from router.api.middleware import RUNTIME
from router.app import build_app
from router.logs import Runner
from router.metrics import Metrics
from router.payments.failover import ABANDONED_CLOSE_AFTER_S
from router.settings import Settings, Workers

ACCOUNTS = ("a", "b", "c")
FEES = {"a": 0.38, "b": 0.55, "c": 0.6}
STRATEGIES = ("oracle", "adaptive", "score", "priority")
HEALTHY = {"error_rate": 0.005}
SETTLE_S = ABANDONED_CLOSE_AFTER_S + 3.0
"""After the last phase: time for the worker to close the orders its payments left behind."""


@dataclass(frozen=True)
class Phase:
    name: str
    faults: Mapping[str, Mapping[str, object]]
    """Per account, the simulator's `PUT /sim/faults` document."""
    order: tuple[str, ...]
    """Best first: what the oracle tries."""

    @property
    def best(self) -> str:
        """The account the oracle tries first."""
        return self.order[0]


PHASES = (
    Phase("all healthy", {"a": HEALTHY, "b": HEALTHY, "c": HEALTHY}, ("a", "b", "c")),
    Phase(
        "a fails 30% (creates, queries, closes)",
        {"a": {"error_rate": 0.3}, "b": HEALTHY, "c": HEALTHY},
        ("b", "c", "a"),
    ),
    Phase(
        "a down, b slow (30% of calls +3 s)",
        {"a": {"outage": True}, "b": HEALTHY | {"slow_rate": 0.3, "slow_ms": 3000}, "c": HEALTHY},
        ("c", "b", "a"),
    ),
    Phase(
        "a recovers, c fails 5%",
        {"a": HEALTHY, "b": HEALTHY, "c": {"error_rate": 0.05}},
        ("a", "b", "c"),
    ),
)


@dataclass
class Bench:
    session: aiohttp.ClientSession
    router_url: str
    api_key: str
    sims: dict[str, str]
    calls_made: Callable[[str], int]
    """Channel calls the router has made so far to one strategy's accounts."""
    samples: list[Sample] = field(default_factory=list)
    calls: dict[tuple[str, int], int] = field(default_factory=dict)
    """Per (strategy, phase): the channel calls made while the phase ran."""
    ids: itertools.count[int] = field(default_factory=itertools.count)


def routing_yaml(
    sims: Mapping[str, str], sandboxes: Mapping[str, Path], breaker: tuple[float, float]
) -> str:
    """Every strategy's accounts (`<strategy>_<account>`) and one rule per strategy (the
    oracle: one per phase), selected by the payment's metadata. `breaker`: (open_s,
    max_open_s)."""
    lines = ["version: 1", "accounts:"]
    for strategy, account in itertools.product(STRATEGIES, ACCOUNTS):
        lines += [
            f"  {strategy}_{account}:",
            "    type: wechat",
            f"    base_url: {sims[account]}",
            "    livemode: false",
            f"    credentials: {{file: {ensure_sandbox(sandboxes[account]).credentials_path}}}",
            "    timeouts: {connect: 1, total: 5}",
        ]
    lines.append("rules:")
    for index, phase in enumerate(PHASES):
        order = ", ".join(f"oracle_{a}" for a in phase.order)
        lines += [
            f"  - name: oracle-{index}",
            f"    match: {{metadata: {{strategy: oracle, phase: '{index}'}}}}",
            "    strategy: priority",
            f"    accounts: [{order}]",
        ]
    for strategy in STRATEGIES[1:]:
        names = ", ".join(f"{strategy}_{a}" for a in ACCOUNTS)
        exploration = "\n    exploration: 0.03" if strategy == "adaptive" else ""
        lines += [
            f"  - name: {strategy}",
            f"    match: {{metadata: {{strategy: {strategy}}}}}",
            f"    strategy: {strategy}{exploration}",
            f"    accounts: [{names}]",
        ]
    lines.append("fees:")
    lines += [f"  {s}_{a}: {FEES[a]}" for s, a in itertools.product(STRATEGIES, ACCOUNTS)]
    lines += ["breaker:", f"  open_s: {breaker[0]:g}", f"  max_open_s: {breaker[1]:g}"]
    return "\n".join(lines) + "\n"


async def _create(bench: Bench, strategy: str, phase: int, started: float) -> None:
    order_id = f"RQ{next(bench.ids)}"
    body = {
        "amount": 1999,
        "merchant_order_id": order_id,
        "description": "routing quality",
        "method": "qr",
        "metadata": {"strategy": strategy, "phase": str(phase)},
    }
    headers = {"Authorization": f"Bearer {bench.api_key}"}
    t0 = time.perf_counter()
    status, data = 0, {}
    with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
        async with bench.session.post(
            f"{bench.router_url}/v1/payments", json=body, headers=headers
        ) as resp:
            status, data = resp.status, await resp.json()
    ms = (time.perf_counter() - t0) * 1000
    attempts = (data.get("routing") or {}).get("attempts") or []
    prefix = f"{strategy}_"
    tried = [str(a["channel"]).removeprefix(prefix) for a in attempts]
    bench.samples.append(
        Sample(
            strategy=strategy,
            phase=phase,
            at_s=t0 - started,
            ok=status == 201,
            first=tried[0] if tried else None,
            ms=ms,
            code=(data.get("error") or {}).get("code") if status != 201 else None,
            hedged=any(a.get("hedge") for a in attempts),
        )
    )


def calls_made(metrics: Metrics, strategy: str) -> int:
    """Every channel call the router has made to `strategy`'s accounts, whatever the
    operation and outcome."""
    prefix = f"{strategy}_"
    return int(
        sum(
            sample.value
            for family in metrics.channel_calls.collect()
            for sample in family.samples
            if sample.name.endswith("_total") and sample.labels["account"].startswith(prefix)
        )
    )


async def _set_faults(bench: Bench, phase: Phase) -> None:
    for account, faults in phase.faults.items():
        async with bench.session.put(f"{bench.sims[account]}/sim/faults", json=faults) as resp:
            resp.raise_for_status()


async def drive(bench: Bench, phase_s: float, rate: float, say: Callable[[str], None]) -> None:
    """Every phase in turn, `rate` creates per second per strategy. The calls of a phase are
    those made from its start to the next one's (the last: until its payments are answered
    and the worker has closed what they left behind)."""
    tasks: set[asyncio.Task[None]] = set()
    before = {s: bench.calls_made(s) for s in STRATEGIES}

    def count(index: int) -> None:
        for strategy in STRATEGIES:
            now = bench.calls_made(strategy)
            bench.calls[(strategy, index)] = now - before[strategy]
            before[strategy] = now

    for index, phase in enumerate(PHASES):
        if index:
            count(index - 1)
        await _set_faults(bench, phase)
        say(f"phase {index + 1}/{len(PHASES)}: {phase.name} (best: {phase.best})")
        started = time.perf_counter()
        for tick in itertools.count():
            due = started + tick / rate
            if due - started >= phase_s:
                break
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            for strategy in STRATEGIES:
                task = asyncio.create_task(_create(bench, strategy, index, started))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    await asyncio.sleep(SETTLE_S)
    count(len(PHASES) - 1)


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = Runner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def run_routing_quality(
    *, quick: bool, runs: int, say: Callable[[str], None], seed: int = 1
) -> dict[str, Any]:
    """Run the scenario `runs` times; the report (JSON-able)."""
    # The phases last a minute (4 s in a quick run), not the hours an incident may: the
    # breakers are scaled to them (shipped: open_s 10, max_open_s 300), or a trip in one
    # phase would keep an account open through the next two.
    phase_s, rate, breaker = (4.0, 5.0, (1.0, 4.0)) if quick else (60.0, 5.0, (5.0, 30.0))
    reports = []
    for run in range(runs):
        say(f"routing quality run {run + 1}/{runs}: {len(PHASES)} phases of {phase_s:g} s")
        samples, calls = await _one_run(phase_s, rate, breaker, seed + run, say)
        reports.append(([s.__dict__ for s in samples], calls))
    return {
        "scenario": "routing-quality",
        "quick": quick,
        "runs": runs,
        "phase_s": phase_s,
        "rate_per_strategy": rate,
        "breaker": list(breaker),
        "phases": [{"name": p.name, "best": p.best} for p in PHASES],
        "fees_pct": FEES,
        "strategies": summarise(
            [[Sample(**raw) for raw in run] for run, _ in reports],
            STRATEGIES,
            [p.best for p in PHASES],
            [calls for _, calls in reports],
        ),
    }


async def _one_run(
    phase_s: float,
    rate: float,
    breaker: tuple[float, float],
    seed: int,
    say: Callable[[str], None],
) -> tuple[list[Sample], dict[tuple[str, int], int]]:
    with tempfile.TemporaryDirectory(prefix="payrouter-rq-") as tmp:
        work = Path(tmp)
        runners: list[web.AppRunner] = []
        children = Children(work)
        async with aiohttp.ClientSession() as session:
            try:
                _, redis_url = await start_redis(children)
                sims, sandboxes = {}, {}
                for index, account in enumerate(ACCOUNTS):
                    sandboxes[account] = work / f"sim-{account}"
                    sim_settings = SimulatorSettings(
                        sandbox_dir=sandboxes[account], seed=seed * 10 + index, time_factor=0.001
                    )
                    runner, sims[account] = await _serve(build_simulator(sim_settings))
                    runners.append(runner)
                routing = work / "routing.yaml"
                routing.write_text(routing_yaml(sims, sandboxes, breaker))
                settings = Settings(
                    redis_url=redis_url,
                    sandbox_dir=work / "router",
                    routing_path=routing,
                    workers=Workers(requery_after_s=3600.0, requery_max_s=3600.0),
                )
                app = await build_app(settings, watch_config=False, run_dispatcher=False)
                runner, url = await _serve(app)
                runners.append(runner)
                rt = app[RUNTIME]
                _, issued = await rt.store.merchants.create("Routing bench")
                bench = Bench(session, url, issued.secret, sims, partial(calls_made, rt.metrics))
                await drive(bench, phase_s, rate, say)
                return bench.samples, bench.calls
            finally:
                for runner in reversed(runners):
                    await runner.cleanup()
                await children.stop_all()
