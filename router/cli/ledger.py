"""`payrouter ledger check`: prove the ledger balances and matches the payments' totals
(router.record.audit, docs/record.md "Checking the ledger").

Exit code 0 when every check holds, 1 naming each mismatch, 2 on a configuration error (the
database cannot be used, or its schema is not this version's).
"""

from __future__ import annotations

from pathlib import Path

import click

from router.cli.common import emit, load_settings, run_async
from router.cli.db import SANDBOX_OPTION
from router.record import open_checked
from router.record.audit import Report, check_ledger


def table(headers: list[str], rows: list[list[object]]) -> list[str]:
    """`rows` under `headers` as aligned text lines (the ledger and settlement reports)."""
    cells = [headers, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )

    return [line(cells[0]), *(line(row) for row in cells[1:])]


def render(report: Report, description: str) -> str:
    """The report as an operator reads it: the figures, then each check and its problems."""
    out = [f"ledger of {description}", ""]
    out += table(
        ["merchant", "cur", "captured", "refunded", "fees", "discounts", "settled", "receivable"],
        [
            [
                m.merchant,
                m.currency,
                m.captured,
                m.refunded,
                m.fees,
                m.discounts,
                m.settled,
                m.receivable,
            ]
            for m in report.merchants
        ],
    )
    out.append("")
    out += table(
        ["channel account", "cur", "captured", "refunded", "fees", "discounts", "clearing"],
        [
            [c.account, c.currency, c.captured, c.refunded, c.fees, c.discounts, c.clearing]
            for c in report.channels
        ],
    )
    out.append("")
    totals = ", ".join(f"{cur} {total}" for cur, total in report.totals.items()) or "no entries"
    out.append(f"totals per currency: {totals}")
    for check in report.checks:
        out.append(f"{'ok  ' if check.ok else 'FAIL'}  {check.name}")
        out += [f"      {problem}" for problem in check.problems]
        if check.more:
            out.append(f"      ... and {check.more} more")
    return "\n".join(out)


@click.group()
def ledger() -> None:
    """The double-entry ledger in the record (PAYROUTER_DATABASE_URL, else the sandbox's)."""


@ledger.command()
@SANDBOX_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def check(sandbox_dir: Path, as_json: bool) -> None:
    """Prove the ledger balances and matches the payments' totals; exit 1 on a mismatch."""

    async def run() -> tuple[Report, str]:
        record = await open_checked(load_settings().database_url, sandbox_dir)
        try:
            async with record.engine.connect() as conn:
                if conn.dialect.name == "postgresql":
                    # One snapshot for every query, while drainers keep writing.
                    await conn.execution_options(isolation_level="REPEATABLE READ")
                async with conn.begin():
                    return await check_ledger(conn), record.description
        finally:
            await record.close()

    report, description = run_async(run)
    emit(report.as_json(), as_json, render(report, description))
    if not report.ok:
        raise SystemExit(1)
