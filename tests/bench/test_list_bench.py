"""The list benchmark at a small size: it loads, measures every scenario, reads each plan,
and prints its table (`benchmarks/list_payments.py`; README Performance has the numbers at a
million rows)."""

from __future__ import annotations

import pytest

from benchmarks.harness.postgres import PostgresServer
from benchmarks.list_payments import SCENARIOS, run, table


@pytest.mark.postgres
async def test_the_list_bench_runs_small(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database("bench_list_smoke")
    try:
        said: list[str] = []
        report = await run(url, rows=20_000, queries=3, say=said.append)
    finally:
        postgres_server.drop_database("bench_list_smoke")
    assert said[0].startswith("loaded 20000 payments in ")
    assert [r["scenario"] for r in report["scenarios"]] == [s.name for s in SCENARIOS]
    for result in report["scenarios"]:
        assert 0 < result["p50_ms"] <= result["p99_ms"], result
        # Every list reads an index of the payments, never the whole table.
        assert result["indexes"] and not result["seq_scan"], result
    unfiltered = report["scenarios"][0]
    assert (unfiltered["rows"], unfiltered["sorts"]) == (20, False)
    print(table(report))
