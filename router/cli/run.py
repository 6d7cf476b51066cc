"""`payrouter serve|sim|dev`: the verbs that run servers until they are told to stop."""

from __future__ import annotations

import logging
import secrets
from dataclasses import replace
from pathlib import Path

import click

from router import logs
from router.api.middleware import RUNTIME
from router.app import build_app
from router.cli.common import FiniteFloatRange, load_settings, not_blank, run_async
from router.cli.dev import describe_store, sandbox_merchant, welcome
from router.cli.environment import help_text
from router.cli.serving import (
    SimulatorOptions,
    start_simulators,
    start_site,
    stop_all,
    stop_signals,
)
from router.settings import NO_DATABASE, ConfigurationError

log = logging.getLogger("payrouter")
SANDBOX_OPTION = click.option(
    "--sandbox-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path(".sandbox"),
    envvar="PAYROUTER_SANDBOX_DIR",
    show_default=True,
    help="Where the simulators keep their generated sandbox keys.",
)
SEED_OPTION = click.option(
    "--seed", type=click.IntRange(min=0), default=None, help="Seed for repeatable simulator runs."
)


def _sandbox(path: Path) -> Path:
    """The sandbox folder, created if missing; a `ConfigurationError` when it cannot be."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise ConfigurationError(
            f"cannot use the sandbox folder {path} (--sandbox-dir or PAYROUTER_SANDBOX_DIR): "
            f"{exc.strerror or exc}"
        ) from None
    return path


@click.command(epilog=help_text())
def serve() -> None:
    """Run the router alone (configured by PAYROUTER_* environment variables)."""
    settings = load_settings()
    if settings.redis_url is not None and settings.database_url is None:
        raise ConfigurationError(NO_DATABASE)
    logs.configure(
        "console" if settings.log_format == "console" else "json",
        logging.getLogger().getEffectiveLevel(),
    )

    async def run() -> None:
        app = await build_app(settings, run_recon=True)
        runner = await start_site(app, settings.host, settings.port)
        stop = stop_signals(on_hangup=app[RUNTIME].reload)
        # A log record, not a bare line: in JSON mode every line of stderr is an object.
        log.info(
            "payrouter listening on http://%s:%d (%s)",
            settings.host,
            settings.port,
            describe_store(settings),
        )
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    run_async(run)


@click.command()
@SANDBOX_OPTION
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    callback=not_blank,
    help="Address the simulators listen on.",
)
@SEED_OPTION
@click.option(
    "--time-factor",
    type=FiniteFloatRange(0, 1000, min_open=True),
    default=1.0,
    show_default=True,
    help="Scale of notification retry delays (0.01 = 100x faster; above 0, at most 1000).",
)
@click.option(
    "--accounts",
    type=click.IntRange(1, 20),
    default=1,
    show_default=True,
    help="Sandbox merchant accounts per wallet (ids numbered on from the first; each can "
    "be given its own faults with PUT /sim/faults?account=ID).",
)
def sim(sandbox_dir: Path, host: str, seed: int | None, time_factor: float, accounts: int) -> None:
    """Run the channel simulators alone (WeChat Pay 8091, Alipay 8092, UnionPay 8093)."""
    options = SimulatorOptions(
        host=host,
        sandbox_dir=_sandbox(sandbox_dir),
        seed=seed,
        time_factor=time_factor,
        accounts=accounts,
    )

    async def run() -> None:
        runners = await start_simulators(options)
        stop = stop_signals()
        for name, port in options.ports:
            click.echo(f"{name} simulator on http://{host}:{port}", err=True)
        try:
            await stop.wait()
        finally:
            await stop_all(runners)

    run_async(run)


@click.command()
@SANDBOX_OPTION
@SEED_OPTION
def dev(sandbox_dir: Path, seed: int | None) -> None:
    """Router, simulators and a store in one process: start here.

    The store is the embedded one, or Redis when PAYROUTER_REDIS_URL is set. The sandbox
    merchant's key and webhook secret are kept in SANDBOX_DIR/dev-merchant.json (0600) and
    are the same at every start.
    """
    settings = load_settings()
    if settings.log_format == "json":
        logs.configure("json", logging.getLogger().getEffectiveLevel())
    if settings.admin_token is None:
        settings = replace(settings, admin_token=secrets.token_urlsafe(24))
    options = SimulatorOptions(sandbox_dir=_sandbox(sandbox_dir), seed=seed)
    settings = replace(settings, sandbox_dir=sandbox_dir)

    async def run() -> None:
        runners = await start_simulators(options)
        try:
            app = await build_app(settings)
            runners.append(await start_site(app, settings.host, settings.port))
            merchant = await sandbox_merchant(app[RUNTIME].store, sandbox_dir)
            stop = stop_signals(on_hangup=app[RUNTIME].reload)
            click.echo(welcome(settings, merchant, sandbox_dir))
            click.echo(f"admin token (for /admin/...): {settings.admin_token}\n")
            await stop.wait()
        finally:
            await stop_all(runners)

    run_async(run)


COMMANDS: tuple[click.Command, ...] = (serve, sim, dev)
"""The verbs of this module, for `router.cli.main` to add."""
