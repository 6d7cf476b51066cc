"""The ledger for operators, behind the admin token like the rest of `/admin`:

    GET /admin/ledger/balances?merchant=&kind=&currency=
        every ledger account (id, kind, owner, currency, balance, number of entries), narrowed
        by the filters given, and the totals per currency of the whole ledger (each 0)

Read from the record (router.record.ledger); a record that cannot answer is a 503.
"""

from __future__ import annotations

from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from router.api.admin import authorize
from router.api.payments import query_params
from router.errors import ApiError
from router.record import Record
from router.record.connect import RecordUnavailable
from router.record.ledger import read_balances

AccountKind = Literal[
    "merchant_receivable", "channel_clearing", "fees", "refunds", "settlement", "discounts"
]


class RecordError(ApiError):
    """The record cannot be read: nothing was done, a retry may work."""

    status = 503
    type = "api_error"


class BalancesQuery(BaseModel):
    """Query parameters of `GET /admin/ledger/balances`."""

    model_config = ConfigDict(extra="forbid")

    merchant: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    kind: AccountKind | None = None
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None


def add_routes(app: web.Application, record: web.AppKey[Record]) -> None:
    """Register the ledger's admin routes, reading the record under `record` (the app's
    key, defined where the app is built)."""

    async def balances(request: web.Request) -> web.Response:
        authorize(request)
        query = query_params(request, BalancesQuery)
        opened = request.app[record]
        try:
            sheet = await read_balances(
                opened.engine, merchant=query.merchant, kind=query.kind, currency=query.currency
            )
        except RecordUnavailable as exc:
            raise RecordError(
                "record_unavailable", f"The record cannot be read: {exc}", retry_after=1
            ) from None
        return web.json_response(
            {
                "data": [
                    {
                        "account": a.account_id,
                        "kind": a.kind,
                        "owner": a.owner,
                        "currency": a.currency,
                        "balance": a.balance,
                        "entries": a.entries,
                    }
                    for a in sheet.accounts
                ],
                "totals": [
                    {"currency": currency, "balance": total}
                    for currency, total in sheet.totals.items()
                ],
                "balanced": all(total == 0 for total in sheet.totals.values()),
            }
        )

    app.router.add_get("/admin/ledger/balances", balances)
