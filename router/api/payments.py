"""Merchant API routes for payments and refunds (`/v1/payments...`, `/v1/refunds...`)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, TypeVar

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt
from pydantic_core import PydanticCustomError

from channels.base import Method, Wallet
from router.api.limits import create_body, screen_create
from router.api.middleware import (
    RUNTIME,
    idempotent,
    json_response,
    parse_body,
    principal,
    validate,
)
from router.errors import InvalidRequest, NotFound
from router.ids import PAYMENT_ID, REFUND_ID
from router.models import (
    MAX_AMOUNT,
    CreatePaymentRequest,
    CreateRefundRequest,
    Cursor,
    Limit,
    OrderId,
    PaymentList,
    PaymentStatus,
    QueryTime,
    RefundList,
)
from router.payments import recorded
from router.payments.refunds import RefundService
from router.payments.service import PaymentService
from router.record.query import PaymentFilter
from router.routing.rules import AccountName
from router.store.payments import StoredPayment

Q = TypeVar("Q", bound=BaseModel)
PAYMENTS = web.AppKey("payments", PaymentService)
REFUNDS = web.AppKey("refunds", RefundService)


def _query_amount(value: object) -> object:
    # As `Limit`: ASCII digits only, not pydantic's lax "1_0", " 10" or "10.0".
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,11}", value):
        return int(value)
    raise PydanticCustomError("int_format", "must be an integer in ASCII digits")


QueryAmount = Annotated[StrictInt, Field(ge=1, le=MAX_AMOUNT), BeforeValidator(_query_amount)]
"""An amount bound as a query parameter, in minor units."""


class ListQuery(BaseModel):
    """Query parameters of `GET /v1/payments`."""

    model_config = ConfigDict(extra="forbid")

    merchant_order_id: OrderId | None = None
    status: PaymentStatus | None = None
    method: Method | None = Field(default=None, description="The payment method.")
    wallet: Wallet | None = Field(default=None, description="The wallet paid with.")
    channel: AccountName | None = Field(
        default=None, description="The channel account (routing file name) it was routed to."
    )
    amount_gte: QueryAmount | None = Field(
        default=None, description="Amount at least this, in minor units."
    )
    amount_lte: QueryAmount | None = Field(
        default=None, description="Amount at most this, in minor units."
    )
    created_gte: QueryTime | None = Field(default=None, description="Created at or after.")
    created_lt: QueryTime | None = Field(default=None, description="Created before.")
    limit: Limit = 10
    starting_after: Cursor | None = Field(
        default=None, description="A payment's id: the page starts after it."
    )


class RefundListQuery(BaseModel):
    """Query parameters of `GET /v1/payments/{id}/refunds`."""

    model_config = ConfigDict(extra="forbid")

    limit: Limit = 10
    starting_after: Cursor | None = Field(
        default=None, description="A refund's id: the page starts after it."
    )


def query_params(request: web.Request, model: type[Q]) -> Q:
    """Query parameters validated by `model`. A repeated parameter is refused; an empty one is
    the same as an absent one (as Stripe reads them, and as HTML forms send them)."""
    values: dict[str, str] = {}
    for name in request.query:
        given = request.query.getall(name)
        if len(given) > 1:
            raise InvalidRequest("parameter_repeated", f"{name}: given more than once", param=name)
        if given[0] or name not in model.model_fields:
            values[name] = given[0]
    return validate(model, values)


def _payment_id(request: web.Request) -> str:
    pay_id = request.match_info["id"]
    if not PAYMENT_ID.fullmatch(pay_id):
        raise NotFound("payment", pay_id)
    return pay_id


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def _public(stored: StoredPayment, status: int = 200) -> web.Response:
    return json_response(stored.payment, status=status)


async def create_payment(request: web.Request) -> web.Response:
    who = principal(request)
    req = create_body(request) or await parse_body(request, CreatePaymentRequest)
    screen = await screen_create(request, req)
    stored = await request.app[PAYMENTS].create(
        who.merchant.id, who.livemode, req, idempotent(request), screen.verdict
    )
    return _public(stored, status=201)


async def get_payment(request: web.Request) -> web.Response:
    stored = await request.app[PAYMENTS].get(principal(request).merchant.id, _payment_id(request))
    return _public(stored)


async def close_payment(request: web.Request) -> web.Response:
    mch = principal(request).merchant.id
    stored = await request.app[PAYMENTS].close(mch, _payment_id(request))
    return _public(stored)


async def list_payments(request: web.Request) -> web.Response:
    mch = principal(request).merchant.id
    query = query_params(request, ListQuery)
    if (
        query.amount_gte is not None
        and query.amount_lte is not None
        and query.amount_lte < query.amount_gte
    ):
        raise InvalidRequest(
            "parameter_invalid", "amount_lte: must not be below amount_gte", param="amount_lte"
        )
    filters = PaymentFilter(
        status=query.status,
        method=query.method,
        wallet=query.wallet,
        channel=query.channel,
        merchant_order_id=query.merchant_order_id,
        created_gte_ms=_ms(query.created_gte),
        created_lt_ms=_ms(query.created_lt),
        amount_gte=query.amount_gte,
        amount_lte=query.amount_lte,
    )
    page, has_more = await recorded.payments(
        request.app[RUNTIME],
        mch,
        filters,
        limit=query.limit,
        starting_after=query.starting_after,
    )
    return json_response(PaymentList(data=[s.payment for s in page], has_more=has_more))


async def create_refund(request: web.Request) -> web.Response:
    mch = principal(request).merchant.id
    req = await parse_body(request, CreateRefundRequest)
    stored, new = await request.app[REFUNDS].create(
        mch, _payment_id(request), req, idempotent(request)
    )
    return json_response(stored.refund, status=201 if new else 200)


async def get_refund(request: web.Request) -> web.Response:
    re_id = request.match_info["id"]
    if not REFUND_ID.fullmatch(re_id):
        raise NotFound("refund", re_id)
    stored = await request.app[REFUNDS].get(principal(request).merchant.id, re_id)
    return json_response(stored.refund)


async def list_refunds(request: web.Request) -> web.Response:
    mch = principal(request).merchant.id
    pay_id = _payment_id(request)
    await request.app[PAYMENTS].get(mch, pay_id)
    query = query_params(request, RefundListQuery)
    page, has_more = await request.app[REFUNDS].list(
        mch, pay_id, limit=query.limit, starting_after=query.starting_after
    )
    return json_response(
        RefundList(
            data=[s.refund for s in page], has_more=has_more, url=f"/v1/payments/{pay_id}/refunds"
        )
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/payments", create_payment)
    app.router.add_get("/v1/payments", list_payments)
    app.router.add_get("/v1/payments/{id}", get_payment)
    app.router.add_post("/v1/payments/{id}/close", close_payment)
    app.router.add_post("/v1/payments/{id}/refunds", create_refund)
    app.router.add_get("/v1/payments/{id}/refunds", list_refunds)
    app.router.add_get("/v1/refunds/{id}", get_refund)
