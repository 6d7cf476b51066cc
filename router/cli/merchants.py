"""`payrouter merchants ...`: create merchants, change them, rotate their keys and secrets.

The webhook-endpoint verbs of the same group live in `router.cli.webhooks`; `router.cli.main`
adds them to this group.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import click

from router.cli.common import emit, run_async, valid_merchant_id, with_store
from router.clock import Clock, from_ms, rfc3339
from router.store import Store
from router.store.merchants import (
    KEEP,
    MAX_GRACE_S,
    ApiKey,
    IssuedKey,
    Merchant,
    Mode,
    name_problem,
)
from router.urls import check_live_url, live_url_problem, url_problem

GRACE = click.IntRange(0, MAX_GRACE_S)
"""Grace periods: 0 (at once) to 30 days, in seconds."""


# --- merchants --------------------------------------------------------------------------


def _name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    problem = name_problem(value)
    if problem is not None:
        raise click.BadParameter(problem)
    return value.strip()


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


@click.group()
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

    merchant, issued, webhook = run_async(lambda: with_store(create))
    data = {
        "merchant": asdict(merchant),
        "key_id": issued.key.id,
        "secret": issued.secret,
        "webhook_secret": webhook,
    }
    emit(
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

    merchant = run_async(lambda: with_store(update))
    row = asdict(merchant)
    emit(row, as_json, "\n".join(_merchant_lines(row, Clock().now_ms())))


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

    secret = run_async(lambda: with_store(rotate))
    emit(
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

    rows = run_async(lambda: with_store(collect))
    now = Clock().now_ms()
    lines = [line for row in rows for line in _merchant_lines(row, now)]
    emit(rows, as_json, "\n".join(lines) or "no merchants")


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

    issued = run_async(lambda: with_store(rotate))
    data = {"key_id": issued.key.id, "secret": issued.secret, "old_keys_expire_in_s": grace}
    emit(
        data,
        as_json,
        f"new key id  {issued.key.id}\nsecret      {issued.secret}\n"
        f"old {mode} keys keep working for {grace} s",
    )
