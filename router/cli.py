"""The `payrouter` command line."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, TypeVar

import click

from router import logs
from router.app import build_app
from router.clock import Clock
from router.config import ConfigError
from router.http import RUNTIME
from router.serving import (
    SimulatorOptions,
    start_simulators,
    start_site,
    stop_all,
    wait_for_stop,
)
from router.settings import Settings, SettingsError
from router.store import Store, open_store
from router.store.merchants import IssuedKey, Merchant, Mode

T = TypeVar("T")
SANDBOX_OPTION = click.option(
    "--sandbox-dir",
    type=click.Path(path_type=Path),
    default=Path(".sandbox"),
    envvar="PAYROUTER_SANDBOX_DIR",
    show_default=True,
    help="Where the simulators keep their generated sandbox keys.",
)


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logs.install()


def _run(main: Callable[[], Awaitable[T]]) -> T:
    try:
        return asyncio.run(main())  # type: ignore[arg-type]
    except ConfigError as exc:
        raise click.ClickException("invalid routing config:\n" + str(exc)) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None


def _emit(data: Any, as_json: bool, text: str) -> None:
    click.echo(json.dumps(data, indent=2) if as_json else text)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """payrouter: one payment API over WeChat Pay, Alipay and UnionPay."""
    _logging(verbose)


@main.command()
def serve() -> None:
    """Run the router alone (configured by PAYROUTER_* environment variables)."""
    settings = _settings()

    async def run() -> None:
        app = await build_app(settings)
        runner = await start_site(app, settings.host, settings.port)
        click.echo(f"payrouter listening on http://{settings.host}:{settings.port}", err=True)
        try:
            await wait_for_stop(on_hangup=app[RUNTIME].reload)
        finally:
            await runner.cleanup()

    _run(run)


@main.command()
@SANDBOX_OPTION
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--seed", type=int, default=None, help="Seed for repeatable runs.")
@click.option(
    "--time-factor",
    type=float,
    default=1.0,
    show_default=True,
    help="Scale of notification retry delays (0.01 = 100x faster).",
)
def sim(sandbox_dir: Path, host: str, seed: int | None, time_factor: float) -> None:
    """Run the channel simulators alone (WeChat Pay 8091, Alipay 8092, UnionPay 8093)."""
    options = SimulatorOptions(
        host=host, sandbox_dir=sandbox_dir, seed=seed, time_factor=time_factor
    )

    async def run() -> None:
        runners = await start_simulators(options)
        for name, port in options.ports:
            click.echo(f"{name} simulator on http://{host}:{port}", err=True)
        try:
            await wait_for_stop()
        finally:
            await stop_all(runners)

    _run(run)


@main.command()
@SANDBOX_OPTION
@click.option("--seed", type=int, default=None, help="Seed for repeatable simulator runs.")
def dev(sandbox_dir: Path, seed: int | None) -> None:
    """Router, simulators and the embedded store in one process: start here."""
    settings = _settings()
    if settings.admin_token is None:
        settings = replace(settings, admin_token=secrets.token_urlsafe(24))
    options = SimulatorOptions(sandbox_dir=sandbox_dir, seed=seed)

    async def run() -> None:
        runners = await start_simulators(options)
        try:
            app = await build_app(settings)
            store = app[RUNTIME].store
            merchant, issued = await store.merchants.create("Sandbox merchant")
            runners.append(await start_site(app, settings.host, settings.port))
            click.echo(_welcome(settings, merchant.id, issued.key.id, issued.secret))
            click.echo(f"admin token (for /admin/...): {settings.admin_token}\n")
            await wait_for_stop(on_hangup=app[RUNTIME].reload)
        finally:
            await stop_all(runners)

    _run(run)


def _welcome(settings: Settings, merchant_id: str, key_id: str, secret: str) -> str:
    base = settings.base_url
    return f"""
payrouter dev is running (embedded store: everything is lost when it stops)
  router      {base}   (openapi: {base}/openapi.json)
  simulators  wechat http://127.0.0.1:8091  alipay http://127.0.0.1:8092
              unionpay http://127.0.0.1:8093

sandbox merchant {merchant_id}
  key id  {key_id}
  secret  {secret}

try it:
  curl -s {base}/v1/payments -H 'Authorization: Bearer {secret}' \\
    -H 'Idempotency-Key: try-1' -H 'Content-Type: application/json' \\
    -d '{{"amount": 1999, "merchant_order_id": "A1001", "description": "Demo", "method": "qr"}}'
then pay it as the buyer (code = the payment's action.qr_code):
  curl -s http://127.0.0.1:8091/sim/buyer/pay -d '{{"code": "weixin://..."}}'
"""


# --- merchants --------------------------------------------------------------------------


async def _with_store(step: Callable[[Store], Awaitable[T]]) -> T:
    settings = _settings()
    if settings.redis_url is None:
        raise click.ClickException(
            "merchant commands need PAYROUTER_REDIS_URL: the embedded store lives inside a "
            "running `payrouter dev`, which creates its own sandbox merchant"
        )
    store = await open_store(settings.redis_url, Clock(), settings.secret_key)
    try:
        return await step(store)
    finally:
        await store.close()


@main.group()
def merchants() -> None:
    """Create merchants, list them, rotate their keys."""


@merchants.command("create")
@click.argument("name")
@click.option("--mode", type=click.Choice(["test", "live"]), default="test", show_default=True)
@click.option("--require-signed", is_flag=True, help="Accept signed requests only.")
@click.option("--notify-url", default=None, help="Default webhook endpoint.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def merchants_create(
    name: str, mode: Mode, require_signed: bool, notify_url: str | None, as_json: bool
) -> None:
    """Create a merchant with one API key and a webhook secret. Both are shown once."""

    async def create(store: Store) -> tuple[Merchant, IssuedKey, str]:
        merchant, issued = await store.merchants.create(
            name, mode=mode, require_signed=require_signed, notify_url=notify_url
        )
        return merchant, issued, (await store.merchants.webhook_secrets(merchant.id))[0]

    merchant, issued, webhook = _run(lambda: _with_store(create))
    data = {
        "merchant": asdict(merchant),
        "key_id": issued.key.id,
        "secret": issued.secret,
        "webhook_secret": webhook,
    }
    _emit(
        data,
        as_json,
        f"merchant {merchant.id} ({name})\nkey id          {issued.key.id}\n"
        f"secret          {issued.secret}\nwebhook secret  {webhook}\n"
        "(shown only now: the API secret is stored hashed, the webhook secret encrypted)",
    )


@merchants.command("rotate-webhook-secret")
@click.argument("merchant_id")
@click.option(
    "--grace",
    type=int,
    default=86400,
    show_default=True,
    help="Seconds the old secret keeps signing beside the new one.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def merchants_rotate_webhook(merchant_id: str, grace: int, as_json: bool) -> None:
    """A new webhook secret; webhooks carry both signatures during the grace period."""

    async def rotate(store: Store) -> str:
        if await store.merchants.get(merchant_id) is None:
            raise click.ClickException(f"no merchant {merchant_id}")
        return await store.merchants.rotate_webhook_secret(merchant_id, grace)

    secret = _run(lambda: _with_store(rotate))
    _emit(
        {"webhook_secret": secret, "old_secrets_expire_in_s": grace},
        as_json,
        f"webhook secret  {secret}\nthe old one keeps signing for {grace} s",
    )


@merchants.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def merchants_list(as_json: bool) -> None:
    """List merchants and their keys (never the secrets)."""

    async def collect(store: Store) -> list[dict[str, Any]]:
        out = []
        for m in await store.merchants.all():
            keys = [asdict(k) for k in await store.merchants.keys_of(m.id)]
            out.append(asdict(m) | {"keys": keys})
        return out

    rows = _run(lambda: _with_store(collect))
    lines = []
    for row in rows:
        lines.append(f"{row['id']}  {row['name']}  signed-only={row['require_signed']}")
        for key in row["keys"]:
            state = "active" if key["expires_at_ms"] is None else f"expires {key['expires_at_ms']}"
            lines.append(f"    {key['id']}  {key['mode']}  {state}")
    _emit(rows, as_json, "\n".join(lines) or "no merchants")


@merchants.command("rotate-key")
@click.argument("merchant_id")
@click.option("--mode", type=click.Choice(["test", "live"]), default="test", show_default=True)
@click.option(
    "--grace", type=int, default=86400, show_default=True, help="Seconds the old keys keep working."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def merchants_rotate(merchant_id: str, mode: Mode, grace: int, as_json: bool) -> None:
    """Issue a new key; the merchant's old keys of that mode expire after the grace period."""

    async def rotate(store: Store) -> Any:
        if await store.merchants.get(merchant_id) is None:
            raise click.ClickException(f"no merchant {merchant_id}")
        return await store.merchants.rotate(merchant_id, mode, grace)

    issued = _run(lambda: _with_store(rotate))
    data = {"key_id": issued.key.id, "secret": issued.secret, "old_keys_expire_in_s": grace}
    _emit(
        data,
        as_json,
        f"new key id  {issued.key.id}\nsecret      {issued.secret}\n"
        f"old {mode} keys keep working for {grace} s",
    )
