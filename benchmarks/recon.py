"""What reconciling a day costs: a record of N succeeded payments and refunds on PostgreSQL,
an Alipay statement of the same N lines, and the engine between them.

    .venv/bin/python -m benchmarks.recon [--lines 1000000] [--trace]

Starts a private PostgreSQL (`benchmarks/harness/postgres.py`), fills the record with COPY
(every tenth line a refund of the payment before, as `benchmarks/statement_parse.py` writes
the statement), writes the statement file, then runs `router.recon.engine.Reconciler` for the
day: every line is looked up, classified and written to `recon_lines`, and the day's fees and
coupons posted (per merchant and currency). Prints lines/s, the run's time, the peak RSS of
the process and (with `--trace`, a second run under tracemalloc) the peak Python allocation
of the run. Asserts nothing but that
every line matched. Target: 1,000,000 lines in under 60 s, in flat memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import tempfile
import time
import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks.harness.postgres import start_postgres
from benchmarks.statement_parse import DAY, _amount, _moment, write_alipay
from channels.alipay.protocol import statement as alipay
from channels.base import StatementLine
from router.clock import Clock
from router.recon.engine import Reconciler
from router.recon.report import RunReport
from router.record import open_record

ACCOUNT = "alipay_main"
MCH = "mch_reconbench01"


@dataclass(frozen=True)
class Result:
    lines: int
    seconds: float
    report: RunReport
    peak_bytes: int | None

    @property
    def lines_per_s(self) -> float:
        return self.lines / self.seconds


class FileChannel:
    """A channel account whose statement is a file in Alipay's format (the adapter's reader,
    without the download)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.account = ACCOUNT

    async def statement(self, day: date) -> AsyncIterator[StatementLine]:
        with self.path.open("rb") as stream:
            for n, line in enumerate(alipay.read_bill(stream)):
                yield line
                if n % 1000 == 999:
                    await asyncio.sleep(0)


class NoFixes:
    """Every line of the bench matches: a fix asked for is a bug in the bench."""

    async def payment(self, merchant: str, pay_id: str) -> str | None:
        raise AssertionError(f"unexpected fix of {pay_id}")

    async def refund(self, merchant: str, re_id: str) -> str | None:
        raise AssertionError(f"unexpected fix of {re_id}")

    async def paid_ms(self, row: dict[str, Any]) -> int | None:
        return None


def _ms(i: int, lines: int) -> int:
    return int(_moment(i, lines).timestamp() * 1000)


PAYMENT_COLUMNS = [
    "id", "merchant_id", "version", "merchant_order_id", "amount", "currency",
    "amount_refunded", "method", "wallet", "channel", "channel_trade_no", "status",
    "description", "metadata", "routing", "livemode", "created_ms", "paid_ms", "updated_ms",
]  # fmt: skip
REFUND_COLUMNS = [
    "id", "payment_id", "merchant_id", "version", "amount", "currency", "status",
    "livemode", "created_ms", "succeeded_ms", "updated_ms",
]  # fmt: skip
CHUNK = 50_000


async def fill_record(engine: AsyncEngine, lines: int) -> None:
    """The record's side of `lines` statement lines, by COPY in chunks (flat memory)."""
    empty = json.dumps({})
    async with engine.begin() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        for first in range(0, lines, CHUNK):
            pays: list[tuple[object, ...]] = []
            refs: list[tuple[object, ...]] = []
            for i in range(first, min(first + CHUNK, lines)):
                at = _ms(i, lines)
                if i % 10 == 9:
                    payment = i - 1
                    refund = (f"re_{i:022d}", f"pay_{payment:022d}", MCH, 2, _amount(payment) // 2)
                    refs.append((*refund, "CNY", "succeeded", False, at, at, at))
                else:
                    head = (f"pay_{i:022d}", MCH, 3, f"B{i}", _amount(i), "CNY", 0, "qr")
                    tail = (ACCOUNT, f"T{i}", "succeeded", "bench", empty, empty, False)
                    pays.append((*head, "alipay", *tail, at, at, at))
            await driver.copy_records_to_table("payments", records=pays, columns=PAYMENT_COLUMNS)
            await driver.copy_records_to_table("refunds", records=refs, columns=REFUND_COLUMNS)
    async with engine.connect() as conn:
        # A live record has its statistics (autovacuum); a table just filled by COPY has not.
        await conn.execute(text("ANALYZE payments"))
        await conn.execute(text("ANALYZE refunds"))
        await conn.commit()


async def bench(database_url: str, lines: int, folder: Path, trace: bool = False) -> Result:
    """Fill a migrated-on-the-spot record at `database_url`, write the statement into
    `folder`, reconcile, and measure."""
    record = await open_record(database_url, folder)
    try:
        await record.migrate()
        await fill_record(record.engine, lines)
        path = folder / "alipay.statement"
        write_alipay(path, lines)
        reconciler = Reconciler(record.engine, FileChannel(path), "alipay", NoFixes(), Clock())  # type: ignore[arg-type]
        started = time.perf_counter()
        report = await reconciler.run(DAY)
        seconds = time.perf_counter() - started
        assert report.status == "done", report.error
        assert report.matched == report.lines == lines, report.as_json()
        peak = None
        if trace:
            tracemalloc.start()
            again = await reconciler.run(DAY)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            assert again.matched == lines and again.postings == 0
        return Result(lines, seconds, report, peak)
    finally:
        await record.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--trace", action="store_true", help="Also trace a re-run's memory.")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="payrouter-recon-"))
    server = start_postgres()
    try:
        url = server.create_database("recon")
        result = asyncio.run(bench(url, args.lines, folder, args.trace))
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    r = result.report
    print(f"lines: {result.lines}, matched {r.matched}, postings written {r.postings}")
    print(f"reconciled in {result.seconds:.2f} s: {result.lines_per_s:,.0f} lines/s")
    if result.peak_bytes is not None:
        print(f"peak Python allocation of a re-run: {result.peak_bytes / 1e6:.1f} MB")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the process (record and file generation included): {rss:.0f} MB")


if __name__ == "__main__":
    main()
