"""`benchmarks/recon.py` at small sizes: a record and a statement of the same lines on
PostgreSQL, every line matched and posted once; a re-run (traced) posts nothing and its
memory does not grow with the lines (README Performance has the numbers at scale)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.harness.postgres import PostgresServer
from benchmarks.recon import bench


@pytest.mark.postgres
async def test_a_day_of_lines_reconciles_in_flat_memory(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    results = []
    for lines in (2_000, 6_000):
        url = postgres_server.create_database(f"recon_bench_{lines}")
        (tmp_path / str(lines)).mkdir()
        results.append(await bench(url, lines, tmp_path / str(lines), trace=True))
    small, large = results
    for r in results:
        print(f"{r.lines} lines: {r.lines_per_s:,.0f} lines/s, re-run peak {r.peak_bytes} B")
    # One merchant in one currency: the day's fees and coupons are one posting each, by the
    # first run only (the bench checks the re-run posted none).
    for r in results:
        assert r.report.postings == 2
    assert small.peak_bytes is not None and large.peak_bytes is not None
    assert large.peak_bytes < 2 * small.peak_bytes + 1_000_000
