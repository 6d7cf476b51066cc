"""Merchant API routes for settlements (T+1, docs/reconciliation.md "Settlement"):

    GET /v1/settlements?day=&currency=&limit=&starting_after=   newest first
    GET /v1/settlements/{id}
    GET /v1/settlements/{id}/lines?limit=&starting_after=       JSON pages, or with
        `Accept: text/csv` every line as CSV, streamed in chunks

Read from the record; a merchant sees the settlements of its key's mode only, and another
merchant's (or mode's) settlement is `404 resource_missing`. Amounts are integer minor units;
a line's `discount`, `fee` and `net` are its signed share of the settlement's figures.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from aiohttp import payload, web
from pydantic import BaseModel, ConfigDict, Field

from router.api.middleware import RUNTIME, json_response, principal
from router.api.payments import query_params
from router.clock import from_ms, rfc3339
from router.errors import InvalidRequest, NotFound
from router.models import Cursor, Limit
from router.record import Record
from router.record import settlements as rows
from router.record.query import CursorNotFound
from router.settle.objects import settlement_object

SETTLEMENT_ID = re.compile(r"stl_[A-Za-z0-9]{8,64}")
CSV_COLUMNS = (
    "kind",
    "payment_id",
    "refund_id",
    "merchant_order_id",
    "account",
    "channel_trade_no",
    "amount",
    "discount",
    "fee",
    "net",
    "booked_at",
)
Day = Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]


class SettlementListQuery(BaseModel):
    """Query parameters of `GET /v1/settlements`."""

    model_config = ConfigDict(extra="forbid")

    day: Day | None = Field(default=None, description="The settled day, YYYY-MM-DD (China time).")
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None
    limit: Limit = 10
    starting_after: Cursor | None = Field(
        default=None, description="A settlement's id: the page starts after it."
    )


class LineListQuery(BaseModel):
    """Query parameters of `GET /v1/settlements/{id}/lines` (JSON)."""

    model_config = ConfigDict(extra="forbid")

    limit: Limit = 100
    starting_after: Annotated[str, Field(pattern=r"^[0-9]{1,9}$")] | None = Field(
        default=None, description="A line's `number`: the page starts after it."
    )


class Settlement(BaseModel):
    """What a merchant is paid (or owes, `net` < 0) for one day in one currency."""

    id: str
    object: Literal["settlement"] = "settlement"
    day: str
    currency: str
    livemode: bool
    gross: int = Field(description="What the day's payments came to.")
    refunds: int = Field(description="What the day's refunds paid back.")
    discounts: int = Field(description="Coupons the merchant funds, less their refunded share.")
    fees: int = Field(description="Channel fees, less the fees refunds gave back.")
    net: int = Field(description="gross - refunds - discounts - fees; negative: owed by you.")
    payment_count: int
    refund_count: int
    created_at: str


class SettlementLine(BaseModel):
    """One statement line of a settlement."""

    object: Literal["settlement_line"] = "settlement_line"
    number: int
    kind: Literal["payment", "refund"]
    payment_id: str
    refund_id: str | None
    merchant_order_id: str
    account: str
    channel_trade_no: str
    amount: int
    discount: int
    fee: int
    net: int
    booked_at: str


class SettlementList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Settlement]
    has_more: bool
    url: str = "/v1/settlements"


class SettlementLineList(BaseModel):
    object: Literal["list"] = "list"
    data: list[SettlementLine]
    has_more: bool
    url: str


def _settlement(row: dict[str, Any]) -> Settlement:
    return Settlement.model_validate(settlement_object(row))


def _line(row: dict[str, Any]) -> SettlementLine:
    fields = {k: row[k] for k in SettlementLine.model_fields if k in row}
    return SettlementLine.model_validate(fields | {"booked_at": rfc3339(from_ms(row["booked_ms"]))})


def _record(request: web.Request) -> Record:
    record = request.app[RUNTIME].record
    assert isinstance(record, Record)
    return record


async def _mine(request: web.Request) -> dict[str, Any]:
    """The settlement named in the path, if it is this merchant's in this key's mode."""
    stl_id = request.match_info["id"]
    who = principal(request)
    found = None
    if SETTLEMENT_ID.fullmatch(stl_id):
        async with rows.reading(_record(request)) as conn:
            found = await rows.get(conn, stl_id)
    if found is None or found["merchant_id"] != who.merchant.id:
        raise NotFound("settlement", stl_id)
    if bool(found["livemode"]) != who.livemode:
        raise NotFound("settlement", stl_id)
    return found


async def list_settlements(request: web.Request) -> web.Response:
    who = principal(request)
    query = query_params(request, SettlementListQuery)
    async with rows.reading(_record(request)) as conn:
        try:
            page = await rows.page(
                conn,
                who.merchant.id,
                who.livemode,
                day=query.day,
                currency=query.currency,
                limit=query.limit,
                starting_after=query.starting_after,
            )
        except CursorNotFound as exc:
            raise InvalidRequest("resource_missing", str(exc), param="starting_after") from None
    return json_response(
        SettlementList(data=[_settlement(r) for r in page.rows], has_more=page.has_more)
    )


async def get_settlement(request: web.Request) -> web.Response:
    return json_response(_settlement(await _mine(request)))


def wants_csv(request: web.Request) -> bool:
    """`Accept` names text/csv (JSON stays the default for anything else)."""
    accept = request.headers.get("Accept", "")
    return any(part.split(";")[0].strip().lower() == "text/csv" for part in accept.split(","))


async def _csv(record: Record, stl_id: str) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue().encode()
    async with rows.reading(record) as conn:
        async for chunk in rows.all_lines(conn, stl_id):
            buffer.seek(0)
            buffer.truncate()
            for row in chunk:
                line = _line(row).model_dump()
                writer.writerow(["" if line[c] is None else line[c] for c in CSV_COLUMNS])
            yield buffer.getvalue().encode()


async def list_lines(request: web.Request) -> web.Response:
    found = await _mine(request)
    stl_id = found["id"]
    if wants_csv(request):
        # The body is sent after the middlewares have set their headers, a chunk at a time.
        body = payload.AsyncIterablePayload(_csv(_record(request), stl_id))
        response = web.Response(body=body, content_type="text/csv", charset="utf-8")
        response.headers["Content-Disposition"] = (
            f'attachment; filename="{found["day"]}_{found["currency"]}_{stl_id}.csv"'
        )
        return response
    query = query_params(request, LineListQuery)
    after = int(query.starting_after or 0)
    async with rows.reading(_record(request)) as conn:
        got = await rows.lines_page(conn, stl_id, limit=query.limit + 1, after=after)
    return json_response(
        SettlementLineList(
            data=[_line(r) for r in got[: query.limit]],
            has_more=len(got) > query.limit,
            url=f"/v1/settlements/{stl_id}/lines",
        )
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/settlements", list_settlements)
    app.router.add_get("/v1/settlements/{id}", get_settlement)
    app.router.add_get("/v1/settlements/{id}/lines", list_lines)
