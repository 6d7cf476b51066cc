"""`payrouter recon run`: reconcile each channel account's statement of a day against the
record (router.recon, docs/reconciliation.md).

Exit code 0 when every line matched or was fixed, 1 when something needs review (or a run
failed), 2 on a misconfiguration (one line).
"""

from __future__ import annotations

import io
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import click
from aiohttp import web

from router.app import RECORD, WORKER, build_app
from router.cli.common import emit, load_settings, run_async
from router.cli.db import SANDBOX_OPTION
from router.clock import Clock
from router.recon.fix import reconcile, yesterday
from router.recon.report import RunReport
from router.record.connect import RecordUnavailable
from router.settings import ConfigurationError


def _day(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def render(day: date, reports: list[RunReport]) -> str:
    """The summary table an operator reads, then each discrepancy needing review."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"reconciliation of {day.isoformat()}")
    for name in ("account", "status", "lines", "matched", "fixed", "needs review", "other day"):
        table.add_column(name, justify="left" if name in ("account", "status") else "right")
    for r in reports:
        table.add_row(
            r.account,
            r.status,
            str(r.lines),
            str(r.matched),
            str(r.fixed),
            str(r.needs_review),
            str(r.neighbour_day),
        )
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(table)
    for r in reports:
        if r.error:
            console.print(f"{r.account}: FAILED {r.error}")
        for d in r.discrepancies:
            if d.resolution == "needs_review":
                ident = d.refund_id or d.payment_id or d.channel_trade_no
                console.print(f"{r.account}: {d.kind} {ident} {d.note or ''}".rstrip())
    return console.export_text().rstrip()


@click.group()
def recon() -> None:
    """Reconciliation against the channels' statements."""


@recon.command()
@SANDBOX_OPTION
@click.option("--date", "day", callback=_day, help="Statement day, YYYY-MM-DD (China time).")
@click.option("--account", "accounts", multiple=True, help="Only this account (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def run(sandbox_dir: Path, day: date | None, accounts: tuple[str, ...], as_json: bool) -> None:
    """Reconcile a day (default yesterday, China time) for every account; exit 1 when
    something needs review."""
    settings = load_settings()
    if settings.redis_url is None:
        raise ConfigurationError(
            "recon run needs PAYROUTER_REDIS_URL: it fixes payments through the router's store"
        )
    settings = replace(settings, sandbox_dir=sandbox_dir)
    wanted = day or yesterday(Clock().utcnow())

    async def go() -> list[RunReport]:
        app = await build_app(
            settings,
            clock=Clock(),
            run_worker=False,
            watch_config=False,
            run_dispatcher=False,
            run_drainer=False,
        )
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        try:
            return await _with_progress(app, wanted, list(accounts), as_json)
        except RecordUnavailable as exc:
            raise ConfigurationError(f"the record cannot be used: {exc}") from None
        finally:
            await runner.cleanup()

    reports = run_async(go)
    data: dict[str, Any] = {"date": wanted.isoformat(), "accounts": [r.as_json() for r in reports]}
    emit(data, as_json, "" if as_json else render(wanted, reports))
    if as_json:
        # The JSON is the contract's shape; a failed run is said beside it.
        for r in reports:
            if r.error:
                click.echo(f"{r.account}: reconciliation failed: {r.error}", err=True)
    if any(r.status != "done" or r.needs_review for r in reports):
        raise SystemExit(1)


async def _with_progress(
    app: web.Application, day: date, accounts: list[str], quiet: bool
) -> list[RunReport]:
    worker, record = app[WORKER], app[RECORD]
    if quiet or not sys.stderr.isatty():
        return await reconcile(worker, record.engine, day, accounts or None)
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task("statement lines", total=None)

        def advance(lines: int) -> None:
            bar.advance(task, lines)

        return await reconcile(worker, record.engine, day, accounts or None, advance)
