"""Merchant API routes for payments and refunds (`/v1/payments...`, `/v1/refunds...`)."""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from router.api.limits import screen_create
from router.api.middleware import (
    idempotent,
    json_response,
    parse_body,
    principal,
    validate,
)
from router.errors import InvalidRequest, NotFound
from router.ids import PAYMENT_ID, REFUND_ID
from router.models import (
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
from router.payments.refunds import RefundService
from router.payments.service import PaymentService
from router.store.payments import StoredPayment

Q = TypeVar("Q", bound=BaseModel)
PAYMENTS = web.AppKey("payments", PaymentService)
REFUNDS = web.AppKey("refunds", RefundService)


class ListQuery(BaseModel):
    """Query parameters of `GET /v1/payments`."""

    model_config = ConfigDict(extra="forbid")

    merchant_order_id: OrderId | None = None
    status: PaymentStatus | None = None
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
    req = await parse_body(request, CreatePaymentRequest)
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
    page, has_more = await request.app[PAYMENTS].list(
        mch,
        limit=query.limit,
        merchant_order_id=query.merchant_order_id,
        status=query.status,
        created_gte_ms=_ms(query.created_gte),
        created_lt_ms=_ms(query.created_lt),
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
