"""`payrouter settle run`: T+1 settlement of one day from its reconciled lines
(router.settle, docs/reconciliation.md "Settlement").

Exit code 0 when the day is settled (every settlement made now or before); 1 when some
account of the day is not reconciled yet (or no account was reconciled at all), and nothing
was settled; 2 on a configuration error (the database cannot be used, or a bad date).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from router.cli.common import emit, load_settings, run_async
from router.cli.db import SANDBOX_OPTION
from router.cli.ledger import _table
from router.clock import Clock
from router.record import open_checked
from router.settle import Outcome, parse_day, settle_day, yesterday

COLUMNS = ["merchant", "cur", "mode", "gross", "refunds", "discounts", "fees", "net", "pay", "ref"]


def _day(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return parse_day(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def render(outcome: Outcome) -> str:
    """The day's settlements as an operator reads them."""
    out = [f"settlement of {outcome.day}"]
    if outcome.runs == 0:
        out.append("no reconciliation run for this day yet: run `payrouter recon run` first")
    if outcome.pending_accounts:
        names = ", ".join(outcome.pending_accounts)
        out.append(f"not reconciled yet (nothing settled): {names}")
    rows: list[list[object]] = []
    for s in outcome.settlements:
        rows.append(
            [
                s["merchant_id"],
                s["currency"],
                "live" if s["livemode"] else "test",
                *(s[k] for k in ("gross", "refunds", "discounts", "fees", "net")),
                s["payment_count"],
                s["refund_count"],
            ]
        )
    if rows:
        out += ["", *_table(COLUMNS, rows), ""]
    made = sum(1 for s in outcome.settlements if s["created"])
    if outcome.complete:
        out.append(f"{made} settled now, {len(outcome.settlements) - made} already settled")
    owing = [s for s in outcome.settlements if s["net"] < 0]
    for s in owing:
        out.append(f"{s['merchant_id']} owes {-s['net']} {s['currency']}: refunds exceed payments")
    if outcome.needs_review:
        out.append(f"{outcome.needs_review} line(s) need review and are not settled")
    return "\n".join(out)


@click.group()
def settle() -> None:
    """T+1 settlement of reconciled days (PAYROUTER_DATABASE_URL, else the sandbox's)."""


@settle.command("run")
@SANDBOX_OPTION
@click.option(
    "--date",
    "day",
    callback=_day,
    metavar="YYYY-MM-DD",
    help="The day to settle (China time). Default: yesterday.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def run_command(sandbox_dir: Path, day: str | None, as_json: bool) -> None:
    """Settle a day per merchant and currency; exit 1 while an account is not reconciled."""
    clock = Clock()

    async def run() -> Outcome:
        record = await open_checked(load_settings().database_url, sandbox_dir)
        try:
            return await settle_day(record, day or yesterday(clock), clock)
        finally:
            await record.close()

    outcome = run_async(run)
    data: dict[str, Any] = outcome.as_json()
    emit(data, as_json, render(outcome))
    if not outcome.complete:
        raise SystemExit(1)
