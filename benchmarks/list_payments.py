"""List latency on a large payments table: `router.record.query.list_payments` on a real
PostgreSQL holding --rows payments (default a million), with each filter and deep cursors.

    .venv/bin/python -m benchmarks.list_payments [--rows 1000000] [--queries 200]
        [--database-url postgresql://...]   (default: a private server, thrown away after)

Rows are loaded with COPY (asyncpg's `copy_records_to_table`): four merchants (60/25/10/5 %
of the rows), 180 days of times with bursts in the same millisecond, statuses, methods,
wallets, channels and amounts in realistic shares. Each scenario runs --queries queries on
the largest merchant through SQLAlchemy as the API will, and prints p50/p99 in ms, the rows
per page, and the plan's shape (which index, and whether PostgreSQL had to sort). Prints
numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from benchmarks.harness.postgres import start_postgres
from benchmarks.harness.stats import percentile
from router.record import open_record
from router.record.query import PaymentFilter, list_payments, payments_statement

MERCHANTS = (
    ("mch_bench0big", 60),
    ("mch_bench0mid", 25),
    ("mch_bench0sml", 10),
    ("mch_bench0new", 5),
)
STATUSES = (("succeeded", 70), ("closed", 12), ("failed", 8), ("pending", 6), ("processing", 4))
METHODS = (("qr", 45), ("h5", 15), ("app", 15), ("jsapi", 12), ("web", 8), ("barcode", 5))
WALLETS = (
    ("wechat", "wechat_main", 40),
    ("wechat", "wechat_backup", 15),
    ("alipay", "alipay_main", 35),
    ("unionpay", "unionpay_main", 10),
)
START_MS = 1_767_225_600_000
"""2026-01-01T00:00:00Z: the first row's time; the table spans DAYS after it."""
DAYS = 180
DAY_MS = 86_400_000
COLUMNS = (
    "id",
    "merchant_id",
    "version",
    "merchant_order_id",
    "amount",
    "currency",
    "amount_refunded",
    "method",
    "wallet",
    "channel",
    "channel_trade_no",
    "status",
    "description",
    "metadata",
    "routing",
    "livemode",
    "created_ms",
    "paid_ms",
    "updated_ms",
)


def _weighted(pairs: tuple[tuple[Any, ...], ...], draws: random.Random) -> tuple[Any, ...]:
    return draws.choices(pairs, weights=[p[-1] for p in pairs])[0]


def generate(rows: int, seed: int = 12) -> Iterator[tuple[Any, ...]]:
    """The payments, in time order; one in ten shares its millisecond with the previous."""
    draws = random.Random(seed)  # noqa: S311 - reproducible data, not secrets
    step = DAYS * DAY_MS // max(rows, 1)
    moment = START_MS
    for n in range(rows):
        if draws.random() >= 0.1:
            moment += draws.randint(1, max(1, 2 * step))
        merchant = _weighted(MERCHANTS, draws)[0]
        status = _weighted(STATUSES, draws)[0]
        wallet, channel, _ = _weighted(WALLETS, draws)
        amount = max(1, min(int(draws.lognormvariate(8.5, 1.3)), 50_000_000))
        yield (
            f"pay_{n:022d}",
            merchant,
            3,
            f"order-{n}",
            amount,
            "CNY",
            0,
            _weighted(METHODS, draws)[0],
            wallet,
            channel,
            f"T{n}",
            status,
            "bench",
            "{}",
            '{"rule": "default"}',
            True,
            moment,
            moment + 30_000 if status == "succeeded" else None,
            moment + 30_000,
        )


async def load(engine: AsyncEngine, rows: int) -> float:
    """COPY `rows` payments into the migrated database; seconds taken."""
    began = time.perf_counter()
    async with engine.connect() as conn:
        # asyncpg's own COPY, under SQLAlchemy's connection.
        raw: Any = (await conn.get_raw_connection()).driver_connection
        batch: list[tuple[Any, ...]] = []
        for row in generate(rows):
            batch.append(row)
            if len(batch) == 50_000:
                await raw.copy_records_to_table("payments", records=batch, columns=COLUMNS)
                batch = []
        if batch:
            await raw.copy_records_to_table("payments", records=batch, columns=COLUMNS)
        await raw.execute("ANALYZE payments")
    return time.perf_counter() - began


@dataclass(frozen=True)
class Scenario:
    """A named list query; `filters` draws its filter, `cursor` how far back it starts."""

    name: str
    filters: Callable[[random.Random], PaymentFilter]
    cursor_depth: int | None = None


def _day(draws: random.Random) -> PaymentFilter:
    start = START_MS + draws.randrange(DAYS) * DAY_MS
    return PaymentFilter(created_gte_ms=start, created_lt_ms=start + DAY_MS)


SCENARIOS = (
    Scenario("newest", lambda d: PaymentFilter()),
    Scenario("status=succeeded", lambda d: PaymentFilter(status="succeeded")),
    Scenario("status=processing", lambda d: PaymentFilter(status="processing")),
    Scenario("method=barcode", lambda d: PaymentFilter(method="barcode")),
    Scenario("wallet=unionpay", lambda d: PaymentFilter(wallet="unionpay")),
    Scenario("channel=wechat_backup", lambda d: PaymentFilter(channel="wechat_backup")),
    Scenario(
        "merchant_order_id",
        lambda d: PaymentFilter(merchant_order_id=f"order-{d.randrange(1000)}"),
    ),
    Scenario("created one day", _day),
    Scenario("amount>=200,000", lambda d: PaymentFilter(amount_gte=200_000)),
    Scenario("amount 1000..1010", lambda d: PaymentFilter(amount_gte=1000, amount_lte=1010)),
    Scenario(
        "status=failed amount>=50,000",
        lambda d: PaymentFilter(status="failed", amount_gte=50_000),
    ),
    Scenario("status=pending method=web", lambda d: PaymentFilter(status="pending", method="web")),
    Scenario("newest, cursor 10k deep", lambda d: PaymentFilter(), cursor_depth=10_000),
    Scenario("newest, cursor 500k deep", lambda d: PaymentFilter(), cursor_depth=500_000),
    Scenario(
        "status=succeeded, cursor 300k deep",
        lambda d: PaymentFilter(status="succeeded"),
        cursor_depth=300_000,
    ),
)


async def plan(conn: AsyncConnection, merchant: str, filters: PaymentFilter) -> dict[str, Any]:
    """The first page's plan: the indexes it reads and whether it sorts."""
    compiled = payments_statement(merchant, filters, 20).compile(
        dialect=conn.dialect, compile_kwargs={"literal_binds": True}
    )
    found = await conn.scalar(text(f"EXPLAIN (FORMAT JSON) {compiled}"))
    tree = found if isinstance(found, list) else json.loads(found)
    nodes: list[dict[str, Any]] = []
    stack = [tree[0]["Plan"]]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(node.get("Plans", []))
    return {
        "indexes": sorted({n["Index Name"] for n in nodes if "Index Name" in n}),
        "sorts": any(n["Node Type"] in ("Sort", "Incremental Sort") for n in nodes),
        "seq_scan": any(n["Node Type"] == "Seq Scan" for n in nodes),
    }


async def measure(
    conn: AsyncConnection, merchant: str, scenario: Scenario, queries: int
) -> dict[str, Any]:
    draws = random.Random(scenario.name)  # noqa: S311 - reproducible draws
    cursors: list[str] = []
    if scenario.cursor_depth is not None:
        # Ids at about the depth asked for, found once, outside the measured queries.
        statement = payments_statement(merchant, scenario.filters(draws), 1).offset(
            scenario.cursor_depth
        )
        found = (await conn.execute(statement)).first()
        if found is not None:
            cursors.append(found.id)
    timings, sizes = [], []
    for _ in range(queries):
        filters = scenario.filters(draws)
        after = draws.choice(cursors) if cursors else None
        began = time.perf_counter()
        page = await list_payments(conn, merchant, filters, limit=20, starting_after=after)
        timings.append((time.perf_counter() - began) * 1000)
        sizes.append(len(page.rows))
    timings.sort()
    return {
        "scenario": scenario.name,
        "p50_ms": round(percentile(timings, 50), 2),
        "p99_ms": round(percentile(timings, 99), 2),
        "rows": round(sum(sizes) / len(sizes), 1),
        **await plan(conn, merchant, scenario.filters(random.Random(scenario.name))),  # noqa: S311
    }


async def run(url: str, rows: int, queries: int, say: Callable[[str], object]) -> dict[str, Any]:
    """Migrate, load, then measure every scenario; the report."""
    record = await open_record(url)
    try:
        await record.migrate()
        loaded_s = await load(record.engine, rows)
        say(f"loaded {rows} payments in {loaded_s:.1f} s")
        results = []
        async with record.engine.connect() as conn:
            for scenario in SCENARIOS:
                results.append(await measure(conn, MERCHANTS[0][0], scenario, queries))
                say(json.dumps(results[-1]))
    finally:
        await record.close()
    return {"rows": rows, "queries": queries, "load_s": round(loaded_s, 1), "scenarios": results}


async def with_server(
    rows: int, queries: int, say: Callable[[str], object], database_url: str | None = None
) -> dict[str, Any]:
    """`run` on `database_url`, or on a private server started and stopped here."""
    if database_url is not None:
        return await run(database_url, rows, queries, say)
    server = await asyncio.to_thread(start_postgres)
    try:
        url = await asyncio.to_thread(server.create_database, "bench_list")
        return await run(url, rows, queries, say)
    finally:
        await asyncio.to_thread(server.stop)


def table(report: dict[str, Any]) -> str:
    lines = [
        f"list payments: {report['rows']} rows, {report['queries']} queries per scenario, "
        f"largest merchant ({MERCHANTS[0][1]} %), limit 20",
        f"{'scenario':<36}{'p50 ms':>8}{'p99 ms':>8}{'rows':>6}  plan",
    ]
    for r in report["scenarios"]:
        shape = ", ".join(r["indexes"]) or "no index"
        shape += " + sort" if r["sorts"] else ""
        shape += " + seq scan" if r["seq_scan"] else ""
        lines.append(f"{r['scenario']:<36}{r['p50_ms']:>8}{r['p99_ms']:>8}{r['rows']:>6}  {shape}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--json", action="store_true", help="Print the report as JSON.")
    args = parser.parse_args(argv)
    result = asyncio.run(
        with_server(args.rows, args.queries, lambda s: print(s, flush=True), args.database_url)
    )
    print(json.dumps(result, indent=2) if args.json else table(result))


if __name__ == "__main__":
    main()
