"""The `payrouter` command line: the one place its verbs are put together.

Each verb module (`merchants`, `webhooks`, `routes`, `run`, and `benchmarks.harness.cli`)
defines its commands without knowing this group; `build_cli` adds them. A new verb is one
module plus one `add_command` line here.

Configuration errors (`router.settings.ConfigurationError`: a bad environment variable, a
Redis that cannot be used, a port in use, a broken routing file) end the command with one
line on stderr and exit code 2, whichever verb met them: the group's `invoke` turns them into
that line, so start-up code only raises.
"""

from __future__ import annotations

import logging
from typing import Any

import click

from router import logs
from router.cli import db, ledger, merchants, recon, risk, routes, run, settle, webhooks
from router.settings import ConfigurationError


class ConfigurationExit(click.ClickException):
    """A `ConfigurationError` as the command line shows it: one line, exit code 2."""

    exit_code = 2


class Payrouter(click.Group):
    """The top-level group: the one place configuration errors become an exit."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigurationError as exc:
            raise ConfigurationExit(exc.line()) from None


def _logging(verbose: bool) -> None:
    # Readable lines for every verb; `serve` switches to JSON (`router.logs.configure`).
    logs.configure("console", logging.DEBUG if verbose else logging.INFO)


def build_cli() -> click.Group:
    """The `payrouter` group with every verb added."""

    @click.group(cls=Payrouter)
    @click.version_option(package_name="payrouter", prog_name="payrouter")
    @click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
    def payrouter(verbose: bool) -> None:
        """payrouter: one payment API over WeChat Pay, Alipay and UnionPay."""
        _logging(verbose)

    # The benchmark harness is not service code: imported here, only to register its verb.
    from benchmarks.harness.cli import bench

    merchant_verbs = merchants.merchants
    for command in webhooks.COMMANDS:
        merchant_verbs.add_command(command)
    payrouter.add_command(merchant_verbs)
    payrouter.add_command(routes.routes)
    payrouter.add_command(risk.risk)
    payrouter.add_command(db.db)
    payrouter.add_command(ledger.ledger)
    payrouter.add_command(recon.recon)
    payrouter.add_command(settle.settle)
    for command in run.COMMANDS:
        payrouter.add_command(command)
    payrouter.add_command(bench)
    return payrouter


main = build_cli()
"""The `payrouter` command (`python -m router`)."""
