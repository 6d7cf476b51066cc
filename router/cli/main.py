"""The `payrouter` command line.

Configuration errors (`router.settings.ConfigurationError`: a bad environment variable, a
Redis that cannot be used, a port in use, a broken routing file) end the command with one
line on stderr and exit code 2, whichever verb met them: the group's `invoke` turns them into
that line, so start-up code only raises.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any, TypeVar

import click

from router import logs
from router.clock import Clock, from_ms, rfc3339
from router.ids import MERCHANT_ID
from router.settings import ConfigurationError, Settings
from router.store import Store, open_store
from router.store.merchants import (
    KEEP,
    MAX_GRACE_S,
    ApiKey,
    IssuedKey,
    Merchant,
    Mode,
    name_problem,
)
from router.webhooks.urls import check_live_url, live_url_problem, url_problem

T = TypeVar("T")
GRACE = click.IntRange(0, MAX_GRACE_S)
"""Grace periods: 0 (at once) to 30 days, in seconds."""


class FiniteFloatRange(click.FloatRange):
    """`click.FloatRange` that also refuses `nan` (which compares false with both bounds, so
    FloatRange lets it through) and `inf`."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


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


def _settings() -> Settings:
    """The environment's settings; raises `SettingsError` (shown as one line, exit 2)."""
    return Settings.from_env()


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
    except KeyboardInterrupt:
        raise SystemExit(130) from None


def _emit(data: Any, as_json: bool, text: str) -> None:
    click.echo(json.dumps(data, indent=2) if as_json else text)


@click.group(cls=Payrouter)
@click.version_option(package_name="payrouter", prog_name="payrouter")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """payrouter: one payment API over WeChat Pay, Alipay and UnionPay."""
    _logging(verbose)


# --- merchants --------------------------------------------------------------------------


async def _with_store(step: Callable[[Store], Awaitable[T]]) -> T:
    settings = _settings()
    if settings.redis_url is None:
        raise ConfigurationError(
            "merchant commands need PAYROUTER_REDIS_URL: the embedded store lives inside a "
            "running `payrouter dev`, which keeps its own sandbox merchant"
        )
    store = await open_store(settings.redis_url, Clock(), settings.secret_key)
    try:
        return await step(store)
    finally:
        await store.close()


def _name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    problem = name_problem(value)
    if problem is not None:
        raise click.BadParameter(problem)
    return value.strip()


def valid_merchant_id(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A MERCHANT_ID argument: refused before any store is opened unless it has the shape
    every merchant id has (`mch_` and 8 to 64 letters or digits)."""
    if not MERCHANT_ID.fullmatch(value):
        raise click.BadParameter(f"{value!r} is not a merchant id (mch_ and letters or digits)")
    return value


def not_blank(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An option or argument that must hold something other than whitespace, when given."""
    if value is not None and not value.strip():
        raise click.BadParameter("must not be empty")
    return value


def _url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Checks every mode shares; the live-mode ones need the merchant's mode and DNS."""
    if value is not None and (problem := url_problem(value)) is not None:
        raise click.BadParameter(problem)
    return value


async def _live_problem(url: str | None) -> str | None:
    """Why a default endpoint cannot receive live events (None: it can, or there is none)."""
    if url is None:
        return None
    return live_url_problem(url) or await check_live_url(url)


def _refuse_url(problem: str | None, why: str) -> None:
    if problem is not None:
        raise click.BadParameter(f"{problem} ({why})", param_hint="'--notify-url'")


async def _merchant(store: Store, merchant_id: str) -> Merchant:
    found = await store.merchants.get(merchant_id)
    if found is None:
        raise click.ClickException(f"no merchant {merchant_id}")
    return found


def _key_row(key: ApiKey) -> dict[str, Any]:
    expires = key.expires_at_ms
    return asdict(key) | {"expires_at": None if expires is None else rfc3339(from_ms(expires))}


def _merchant_lines(row: dict[str, Any], now_ms: int) -> list[str]:
    lines = [
        f"{row['id']}  {row['name']}",
        f"    created {row['created_at']}  signed-only={row['require_signed']}  "
        f"notify_url={row['notify_url'] or '-'}",
    ]
    for key in row.get("keys", []):
        if key["expires_at_ms"] is None:
            state = "active"
        else:
            verb = "expires" if key["expires_at_ms"] > now_ms else "expired"
            state = f"{verb} {key['expires_at']}"
        lines.append(f"    {key['id']}  {key['mode']}  created {key['created_at']}  {state}")
    return lines


@main.group()
def merchants() -> None:
    """Create merchants, list them, change them, rotate their keys (needs PAYROUTER_REDIS_URL)."""


@merchants.command("create")
@click.argument("name", callback=_name)
@click.option("--mode", type=click.Choice(["test", "live"]), default="test", show_default=True)
@click.option("--require-signed", is_flag=True, help="Accept signed requests only.")
@click.option(
    "--notify-url",
    default=None,
    callback=_url,
    help="Default webhook endpoint (live mode: https on a public host).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def merchants_create(
    name: str, mode: Mode, require_signed: bool, notify_url: str | None, as_json: bool
) -> None:
    """Create a merchant with one API key and a webhook secret. Both are shown once."""

    async def create(store: Store) -> tuple[Merchant, IssuedKey, str]:
        if mode == "live":
            _refuse_url(await _live_problem(notify_url), "live mode")
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
        f"merchant {merchant.id} ({merchant.name})\nkey id          {issued.key.id}\n"
        f"secret          {issued.secret}\nwebhook secret  {webhook}\n"
        "(shown only now: the API secret is stored hashed, the webhook secret encrypted)",
    )


@merchants.command("update")
@click.argument("merchant_id", callback=valid_merchant_id)
@click.option(
    "--notify-url",
    default=None,
    callback=_url,
    help="New default webhook endpoint (https on a public host if the merchant has a live key).",
)
@click.option("--no-notify-url", is_flag=True, help="Remove the default webhook endpoint.")
@click.option(
    "--require-signed/--allow-bearer",
    default=None,
    help="Accept signed requests only, or bearer tokens too.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def merchants_update(
    merchant_id: str,
    notify_url: str | None,
    no_notify_url: bool,
    require_signed: bool | None,
    as_json: bool,
) -> None:
    """Change a merchant's default webhook endpoint or its signed-only setting.

    Routers pick up the change within their cache time (5 s).
    """
    if notify_url is not None and no_notify_url:
        raise click.UsageError("--notify-url and --no-notify-url exclude each other")
    if notify_url is None and not no_notify_url and require_signed is None:
        raise click.UsageError(
            "nothing to change: give --notify-url, --no-notify-url or "
            "--require-signed/--allow-bearer"
        )

    async def update(store: Store) -> Merchant:
        await _merchant(store, merchant_id)
        if await store.merchants.has_live_key(merchant_id):
            _refuse_url(await _live_problem(notify_url), "the merchant has a live key")
        updated = await store.merchants.update(
            merchant_id,
            notify_url=None if no_notify_url else (notify_url or KEEP),
            require_signed=KEEP if require_signed is None else require_signed,
        )
        assert updated is not None  # merchants are never deleted
        return updated

    merchant = _run(lambda: _with_store(update))
    row = asdict(merchant)
    _emit(row, as_json, "\n".join(_merchant_lines(row, Clock().now_ms())))


@merchants.command("rotate-webhook-secret")
@click.argument("merchant_id", callback=valid_merchant_id)
@click.option(
    "--grace",
    type=GRACE,
    default=86400,
    show_default=True,
    help="Seconds (0 to 30 days) the old secret keeps signing beside the new one.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def merchants_rotate_webhook(merchant_id: str, grace: int, as_json: bool) -> None:
    """A new webhook secret; webhooks carry both signatures during the grace period."""

    async def rotate(store: Store) -> str:
        await _merchant(store, merchant_id)
        return await store.merchants.rotate_webhook_secret(merchant_id, grace)

    secret = _run(lambda: _with_store(rotate))
    _emit(
        {"webhook_secret": secret, "old_secrets_expire_in_s": grace},
        as_json,
        f"webhook secret  {secret}\nthe old one keeps signing for {grace} s",
    )


@merchants.command("list")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Machine-readable output. Times are RFC 3339 UTC strings (created_at, expires_at); "
    "expires_at_ms is the same instant in Unix epoch milliseconds.",
)
def merchants_list(as_json: bool) -> None:
    """List merchants and their keys (never the secrets); times in UTC."""

    async def collect(store: Store) -> list[dict[str, Any]]:
        out = []
        for m in await store.merchants.all():
            keys = [_key_row(k) for k in await store.merchants.keys_of(m.id)]
            out.append(asdict(m) | {"keys": keys})
        return out

    rows = _run(lambda: _with_store(collect))
    now = Clock().now_ms()
    lines = [line for row in rows for line in _merchant_lines(row, now)]
    _emit(rows, as_json, "\n".join(lines) or "no merchants")


@merchants.command("rotate-key")
@click.argument("merchant_id", callback=valid_merchant_id)
@click.option("--mode", type=click.Choice(["test", "live"]), default="test", show_default=True)
@click.option(
    "--grace",
    type=GRACE,
    default=86400,
    show_default=True,
    help="Seconds (0 to 30 days) the old keys keep working.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def merchants_rotate(merchant_id: str, mode: Mode, grace: int, as_json: bool) -> None:
    """Issue a new key; the merchant's old keys of that mode expire after the grace period."""

    async def rotate(store: Store) -> IssuedKey:
        merchant = await _merchant(store, merchant_id)
        problem = await _live_problem(merchant.notify_url) if mode == "live" else None
        if problem is not None:
            raise click.ClickException(
                f"the merchant's default endpoint cannot receive live events: {problem}; "
                f"change it first: payrouter merchants update {merchant_id} "
                "--notify-url https://... (or --no-notify-url)"
            )
        return await store.merchants.rotate(merchant_id, mode, grace)

    issued = _run(lambda: _with_store(rotate))
    data = {"key_id": issued.key.id, "secret": issued.secret, "old_keys_expire_in_s": grace}
    _emit(
        data,
        as_json,
        f"new key id  {issued.key.id}\nsecret      {issued.secret}\n"
        f"old {mode} keys keep working for {grace} s",
    )
