"""`payrouter merchants webhook-endpoints|enable-endpoint`: the endpoints a `410 Gone` disabled.

The same data as `GET /v1/webhook_endpoints/disabled` (merchant API) and
`GET /admin/merchants/{id}/webhook-endpoints/disabled` (operators), for whoever holds the
store rather than a key.
"""

from __future__ import annotations

from typing import Any

import click

from router.api.events import WebhookEndpoint, enable_endpoint, endpoint_view
from router.cli.common import emit, not_blank, run_async, valid_merchant_id, with_store
from router.errors import NotFound
from router.store import Store


async def _known(store: Store, merchant_id: str) -> None:
    if await store.merchants.get(merchant_id) is None:
        raise click.ClickException(f"no merchant {merchant_id}")


@click.command("webhook-endpoints")
@click.argument("merchant_id", callback=valid_merchant_id)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def webhook_endpoints(merchant_id: str, as_json: bool) -> None:
    """List the merchant's webhook endpoints disabled because they answered 410 Gone."""

    async def collect(store: Store) -> list[dict[str, Any]]:
        await _known(store, merchant_id)
        found = await store.events.endpoints.list(merchant_id)
        return [endpoint_view(e).model_dump() for e in found]

    rows = run_async(lambda: with_store(collect))
    lines = [
        f"{row['id']}  disabled {row['disabled_at'] or '(time unknown)'}  {row['url']}"
        for row in rows
    ]
    emit(rows, as_json, "\n".join(lines) or "no disabled webhook endpoints")


@click.command("enable-endpoint")
@click.argument("merchant_id", callback=valid_merchant_id)
@click.argument("endpoint", callback=not_blank)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def enable(merchant_id: str, endpoint: str, as_json: bool) -> None:
    """Deliver to a disabled endpoint again. ENDPOINT: its URL or its id (we_...).

    Events that became dead letters meanwhile are not sent by this: resend them
    (`POST /v1/events/{id}/resend` or `POST /admin/webhooks/{merchant}/{id}/resend`).
    """

    async def run(store: Store) -> WebhookEndpoint:
        await _known(store, merchant_id)
        try:
            return await enable_endpoint(store.events, merchant_id, endpoint)
        except NotFound:
            raise click.ClickException(
                f"{endpoint} is not a disabled webhook endpoint of {merchant_id}"
            ) from None

    enabled = run_async(lambda: with_store(run))
    emit(enabled.model_dump(), as_json, f"enabled {enabled.url}")


COMMANDS: tuple[click.Command, ...] = (webhook_endpoints, enable)
"""The `payrouter merchants` verbs of this module, for `router.cli.main` to add."""
