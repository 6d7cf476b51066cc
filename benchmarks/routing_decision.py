"""What one routing decision costs: rule matching and ordering alone, and with the breaker
snapshot read from Redis (the one round trip a decision makes).

    .venv/bin/python benchmarks/routing_decision.py [--redis redis://127.0.0.1:6379/0]

Without --redis it uses the embedded store (an in-process fake: the Redis cost is then only
the client's own work). Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from channels.base import Capabilities, Channel
from router.clock import Clock
from router.routing.config import load_config
from router.routing.decide import Candidate, decide
from router.routing.health import Breakers
from router.routing.rules import RouteRequest, matches, order
from router.store import open_store

ACCOUNTS = 6
RULES = 20


class StandIn:
    def __init__(self, account: str) -> None:
        self.account = account
        self.capabilities = Capabilities(
            wallet="wechat", methods=frozenset({"qr", "h5"}), currencies=frozenset({"CNY"})
        )


def routing_file(folder: Path) -> Path:
    names = [f"wechat_{i}" for i in range(ACCOUNTS)]
    lines = ["version: 1", "accounts:"]
    for i, name in enumerate(names):
        lines.append(
            f"  {name}: {{type: wechat, base_url: 'http://127.0.0.1:{9000 + i}', "
            "credentials: {file: x.json}}"
        )
    lines.append("rules:")
    for i in range(RULES - 1):  # rules that do not match the benchmark's payment
        lines += [
            f"  - name: r{i}",
            f"    match: {{metadata: {{segment: s{i}}}}}",
            f"    accounts: [{names[i % ACCOUNTS]}]",
        ]
    lines += [
        "  - name: scored",
        "    match: {method: [qr], amount: {gte: 1, lt: 1000000}}",
        "    strategy: score",
        f"    accounts: [{', '.join(names)}]",
    ]
    path = folder / "routing.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


async def main(redis_url: str | None, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(routing_file(Path(tmp))).config
    accounts = {
        name: Candidate(channel=cast(Channel, StandIn(name)), livemode=False)
        for name in config.accounts
    }
    clock = Clock()
    store = await open_store(redis_url, clock)
    breakers = Breakers(store.breakers, clock, lambda: (config.health, config.breaker))
    for name in accounts:
        await breakers.record(name, "ok", 120)
    req = RouteRequest(
        payment_id="pay_bench",
        method="qr",
        currency="CNY",
        amount=1999,
        wallet=None,
        merchant_id="mch_bench",
        metadata={},
        now=datetime.now(UTC),
    )

    def pure() -> None:
        rule = next(r for r in config.rules if matches(r.match, req))
        order(
            rule.strategy,
            rule.accounts,
            payment_id=req.payment_id,
            scores=dict.fromkeys(rule.accounts, 0.9),
            exploration=rule.exploration,
        )

    samples_pure = []
    for _ in range(rounds):
        started = time.perf_counter_ns()
        pure()
        samples_pure.append(time.perf_counter_ns() - started)
    samples_full = []
    for _ in range(rounds):
        started = time.perf_counter_ns()
        await decide(config, accounts, breakers, req, pinned=None, livemode=False)
        samples_full.append(time.perf_counter_ns() - started)
    await store.close()

    def row(label: str, ns: list[int]) -> str:
        ordered = sorted(ns)
        p50 = statistics.median(ordered) / 1000
        p99 = ordered[int(len(ordered) * 0.99) - 1] / 1000
        return f"{label:<44} {p50:>9.1f} {p99:>9.1f}"

    store_name = redis_url or "embedded store"
    print(f"routing decision, {ACCOUNTS} accounts, {RULES} rules, {rounds} rounds, {store_name}")
    print(f"{'':<44} {'p50 µs':>9} {'p99 µs':>9}")
    print(row("rules + strategy (pure)", samples_pure))
    print(row("decide(): rules + breaker snapshot + order", samples_full))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default=None, help="Redis URL (default: embedded store)")
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    asyncio.run(main(args.redis, args.rounds))
