"""The Redis memory and drain lag benchmark at a small size (`benchmarks/redis_memory.py`;
README Performance has the numbers of a full run): payments leave Redis after the retention,
the samples and the summary are all there."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from benchmarks.harness.postgres import PostgresServer
from benchmarks.redis_memory import run, slope


def test_slope_of_a_line_and_of_a_flat_series() -> None:
    assert slope([(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]) == pytest.approx(2.0)
    assert slope([(0.0, 7.0), (1.0, 7.0), (2.0, 7.0)]) == 0.0
    assert slope([(1.0, 7.0)]) == 0.0


@pytest.mark.postgres
async def test_the_memory_bench_runs_small(
    redis_server: str, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    # One server, whatever `--redis` says: INFO memory is read from a single node.
    client = redis.Redis.from_url(redis_server)
    client.flushall()
    client.close()
    url = postgres_server.create_database("bench_memory_smoke")
    try:
        said: list[str] = []
        report = await run(
            redis_server,
            url,
            tmp_path,
            rate=50,
            seconds=4,
            retention_s=0.5,
            sample_s=0.5,
            say=said.append,
        )
    finally:
        postgres_server.drop_database("bench_memory_smoke")
    assert report["written"] >= 100, report
    samples = report["samples"]
    assert len(samples) >= 4, samples
    # The retention is 0.5 s: most payments written have already left Redis.
    assert 0 <= samples[-1]["held"] < report["written"] / 2, samples
    assert report["bytes_per_payment"] > 0, report
    assert 0 <= report["lag_p50_s"] <= report["lag_p99_s"] <= report["lag_max_s"], report
    assert "drain lag over" in said[0]
