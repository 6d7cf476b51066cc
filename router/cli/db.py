"""`payrouter db migrate|status`: the record's schema (router.record).

With PAYROUTER_DATABASE_URL set these act on that PostgreSQL; without it, on the embedded
database in the sandbox folder, the one `payrouter dev` uses.
"""

from __future__ import annotations

from pathlib import Path

import click

from router.cli.common import load_settings, run_async
from router.record import Record, current, head, open_record

SANDBOX_OPTION = click.option(
    "--sandbox-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path(".sandbox"),
    envvar="PAYROUTER_SANDBOX_DIR",
    show_default=True,
    help="Where the embedded database lives when PAYROUTER_DATABASE_URL is not set.",
)


async def _open(sandbox_dir: Path) -> Record:
    return await open_record(load_settings().database_url, sandbox_dir)


@click.group()
def db() -> None:
    """The record's database (PAYROUTER_DATABASE_URL, else the sandbox's embedded one)."""


@db.command(name="migrate")
@SANDBOX_OPTION
def migrate_command(sandbox_dir: Path) -> None:
    """Create or upgrade the schema to this version's (safe to run again)."""

    async def run() -> str:
        record = await _open(sandbox_dir)
        try:
            done = await record.migrate()
        finally:
            await record.close()
        if not done.changed:
            return f"{record.description}: schema at revision {done.after}, already current"
        before = "an empty database" if done.before is None else f"revision {done.before}"
        return f"{record.description}: schema at revision {done.after} (from {before})"

    click.echo(run_async(run))


@db.command()
@SANDBOX_OPTION
def status(sandbox_dir: Path) -> None:
    """Show the database's schema revision and this version's; exit 1 if they differ."""

    async def run() -> tuple[str, str | None]:
        record = await _open(sandbox_dir)
        try:
            return record.description, await current(record.engine)
        finally:
            await record.close()

    (description, found), newest = run_async(run), head()
    click.echo(
        f"{description}\ndatabase revision: {found or 'none (empty)'}\ncode revision:     {newest}"
    )
    if found != newest:
        click.echo("run `payrouter db migrate` to bring the database to the code's revision")
        raise SystemExit(1)
