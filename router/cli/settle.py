"""`payrouter settle run`: T+1 settlement of one day from its reconciled lines
(router.settle, docs/reconciliation.md "Settlement").

Exit code 0 when the day is settled (every settlement made now or before) and announced;
1 when some account of the day is not reconciled yet (or no account was reconciled at all),
and nothing was settled, or when Redis could not take the `settlement.created` events (the
settlements are made; the next run sends them); 2 on a configuration error (the database
cannot be used, or a bad date).

Events go to Redis (PAYROUTER_REDIS_URL), where the routers' dispatchers deliver them; without
it (the sandbox's embedded store lives inside `payrouter dev`) none are sent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from router.cli.common import emit, load_settings, run_async
from router.cli.db import SANDBOX_OPTION
from router.cli.ledger import table
from router.clock import Clock
from router.record import open_checked
from router.settings import ConfigurationError, Settings
from router.settle import Outcome, parse_day, settle_day, yesterday
from router.settle.announce import announce
from router.store import open_store
from router.store.errors import STORE_UNAVAILABLE

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
        out += ["", *table(COLUMNS, rows), ""]
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
    settings = load_settings()
    outcome, sent, problem = run_async(lambda: _run(settings, sandbox_dir, day, clock))
    data: dict[str, Any] = outcome.as_json() | {"events_sent": sent, "events_error": problem}
    text = render(outcome)
    if sent:
        text += f"\n{len(sent)} settlement.created event(s) sent"
    if settings.redis_url is None:
        text += "\nno settlement.created events: PAYROUTER_REDIS_URL is not set"
    emit(data, as_json, text)
    if problem is not None:
        click.echo(f"settlement.created not sent: {problem}; run this again to send it", err=True)
    if not outcome.complete or problem is not None:
        raise SystemExit(1)


async def _run(
    settings: Settings, sandbox_dir: Path, day: str | None, clock: Clock
) -> tuple[Outcome, list[str], str | None]:
    """Settle the day, then announce its settlements; the events sent and, if Redis could
    not take them, why."""
    record = await open_checked(settings.database_url, sandbox_dir)
    try:
        outcome = await settle_day(record, day or yesterday(clock), clock)
        if settings.redis_url is None:
            return outcome, [], None
        try:
            store = await open_store(settings.redis_url, clock, settings.secret_key)
        except ConfigurationError as exc:
            return outcome, [], str(exc)
        try:
            return outcome, await announce(record, store, outcome.day, clock), None
        except STORE_UNAVAILABLE as exc:
            return outcome, [], f"Redis: {type(exc).__name__}: {exc}"
        finally:
            await store.close()
    finally:
        await record.close()
