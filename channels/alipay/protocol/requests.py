"""Alipay OpenAPI requests: what the adapter sends, or hands the buyer. Pure, no I/O.

Server calls are a `Call` (the API method and the signed form POSTed to `/gateway.do`). Page
(`web`), wap (`h5`) and app payments make no server call: `build_create_request` returns the
`Action` the buyer opens, and the trade exists at Alipay only once they do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from yarl import URL

from channels.alipay.protocol.wire import (
    USER_AGENT,
    App,
    browser_url,
    fen_to_yuan,
    format_time,
    order_string,
    server_request,
    signed_params,
)
from channels.base import Action, CreateOrder, Method, RefundOrder
from channels.errors import ChannelOutcomeUnknown, ChannelRejected
from channels.http import HttpRequest

SUBJECT_MAX = 256

API_METHODS: Mapping[Method, str] = {
    "qr": "alipay.trade.precreate",
    "web": "alipay.trade.page.pay",
    "h5": "alipay.trade.wap.pay",
    "app": "alipay.trade.app.pay",
    "jsapi": "alipay.trade.create",
    "barcode": "alipay.trade.pay",
}
PRODUCT_CODES: Mapping[str, str] = {
    "alipay.trade.precreate": "FACE_TO_FACE_PAYMENT",
    "alipay.trade.page.pay": "FAST_INSTANT_TRADE_PAY",
    "alipay.trade.wap.pay": "QUICK_WAP_WAY",
    "alipay.trade.app.pay": "QUICK_MSECURITY_PAY",
    "alipay.trade.create": "JSAPI_PAY",
    "alipay.trade.pay": "FACE_TO_FACE_PAYMENT",
}
CLIENT_SIDE_METHODS: frozenset[Method] = frozenset({"web", "h5", "app"})
"""Signed by us and handed to the buyer; the trade exists at Alipay once the buyer opens it."""

QUERY = "alipay.trade.query"
CLOSE = "alipay.trade.close"
REFUND = "alipay.trade.refund"
REFUND_QUERY = "alipay.trade.fastpay.refund.query"
STATEMENT = "alipay.data.dataservice.bill.downloadurl.query"


def _required(value: str | None, name: str, method: str) -> str:
    if not value:
        raise ChannelRejected(
            f"{name} is required for {method} payments", code="PARAM_MISSING", fault="request"
        )
    return value


def create_biz(order: CreateOrder) -> tuple[str, dict[str, Any]]:
    """The API method and `biz_content` that create `order`.

    Raises `ChannelRejected(fault="request")` for what Alipay cannot take: another currency, a
    naive expiry, a method input the order lacks.
    """
    if order.currency != "CNY":
        raise ChannelRejected(
            f"Alipay takes CNY only, not {order.currency}", code="CURRENCY", fault="request"
        )
    api_method = API_METHODS[order.method]
    biz: dict[str, Any] = {
        "out_trade_no": order.order_no,
        "total_amount": fen_to_yuan(order.amount),
        "subject": order.description[:SUBJECT_MAX],
        "product_code": PRODUCT_CODES[api_method],
    }
    if order.expires_at is not None:
        if order.expires_at.tzinfo is None:
            raise ChannelRejected(
                "expires_at must be timezone-aware", code="PARAM_ERROR", fault="request"
            )
        biz["time_expire"] = format_time(order.expires_at)
    if order.method == "jsapi":
        biz["buyer_id"] = _required(order.payer_id, "payer_id", "jsapi")
    elif order.method == "barcode":
        biz["scene"] = "bar_code"
        biz["auth_code"] = _required(order.auth_code, "auth_code", "barcode")
    elif order.method == "h5" and order.return_url:
        biz["quit_url"] = order.return_url
    return api_method, biz


def refund_biz(refund: RefundOrder) -> dict[str, Any]:
    """`alipay.trade.refund`: `out_request_no` is our refund number, so a resend is one refund."""
    if refund.currency != "CNY":
        raise ChannelRejected(
            f"Alipay refunds CNY only, not {refund.currency}", code="CURRENCY", fault="request"
        )
    biz: dict[str, Any] = {
        "out_trade_no": refund.payment.order_no,
        "refund_amount": fen_to_yuan(refund.amount),
        "out_request_no": refund.refund_no,
    }
    if refund.reason:
        biz["refund_reason"] = refund.reason[:256]
    return biz


@dataclass(frozen=True)
class Call:
    """A server call: the signed form to POST and the API method its reply answers."""

    api_method: str
    request: HttpRequest


def _call(app: App, gateway: str, api_method: str, biz: Mapping[str, Any], now: datetime) -> Call:
    params = signed_params(app, api_method, biz, now=now)
    return Call(api_method, server_request(gateway, params))


def build_create_request(
    app: App, gateway: str, order: CreateOrder, *, now: datetime
) -> Call | Action:
    """The call that creates `order`, or for web, h5 and app the signed `Action` the buyer opens.

    Raises `ChannelRejected(fault="request")` for what Alipay cannot take (see `create_biz`).
    """
    api_method, biz = create_biz(order)
    return_url = order.return_url if order.method in ("web", "h5") else None
    params = signed_params(
        app, api_method, biz, now=now, notify_url=order.notify_url, return_url=return_url
    )
    if order.method in ("web", "h5"):
        return Action("redirect", url=browser_url(gateway, params))
    if order.method == "app":
        return Action("app_params", params={"order_string": order_string(params)})
    return Call(api_method, server_request(gateway, params))


def build_query_request(app: App, gateway: str, order_no: str, *, now: datetime) -> Call:
    """`alipay.trade.query` by our order number."""
    return _call(app, gateway, QUERY, {"out_trade_no": order_no}, now)


def build_close_request(app: App, gateway: str, order_no: str, *, now: datetime) -> Call:
    """`alipay.trade.close` by our order number."""
    return _call(app, gateway, CLOSE, {"out_trade_no": order_no}, now)


def build_refund_request(app: App, gateway: str, refund: RefundOrder, *, now: datetime) -> Call:
    """`alipay.trade.refund` (see `refund_biz`)."""
    return _call(app, gateway, REFUND, refund_biz(refund), now)


def build_refund_query_request(
    app: App, gateway: str, refund: RefundOrder, *, now: datetime
) -> Call:
    """`alipay.trade.fastpay.refund.query` by our refund number, asking for the refund time."""
    biz = {
        "out_trade_no": refund.payment.order_no,
        "out_request_no": refund.refund_no,
        "query_options": ["gmt_refund_pay"],
    }
    return _call(app, gateway, REFUND_QUERY, biz, now)


def build_statement_request(app: App, gateway: str, day: date, *, now: datetime) -> Call:
    """`alipay.data.dataservice.bill.downloadurl.query` for the trade bill of `day`."""
    biz = {"bill_type": "trade", "bill_date": day.isoformat()}
    return _call(app, gateway, STATEMENT, biz, now)


def build_statement_download_request(gateway: str, download_url: str) -> HttpRequest:
    """The `GET` of a bill's `bill_download_url` (signed by Alipay itself, valid 30 s).

    Alipay serves bills from its own download host over https; plain http is accepted only
    from the gateway's host (a sandbox). Raises `ChannelOutcomeUnknown` otherwise.
    """
    base, target = URL(gateway), URL(download_url)
    same_host = (target.scheme, target.host, target.port) == (base.scheme, base.host, base.port)
    if not same_host and target.scheme != "https":
        raise ChannelOutcomeUnknown(
            "the bill_download_url is neither https nor on the gateway's host",
            code="STATEMENT_URL",
        )
    return HttpRequest("GET", download_url, {"User-Agent": USER_AGENT})
