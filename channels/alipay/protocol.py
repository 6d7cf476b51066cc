"""Alipay OpenAPI requests: common parameters, `biz_content`, RSA2-signed. No I/O.

Every call is one set of parameters for `/gateway.do`: the common ones (`app_id`, `method`,
`charset=utf-8`, `sign_type=RSA2`, `timestamp` in Beijing time, `version=1.0`, `notify_url`,
`return_url`, `biz_content` JSON) and `sign`. Server calls are POSTed as a form; page and wap
payments become a URL the buyer's browser opens, and app payments an order string the Alipay
app takes: neither reaches Alipay before the buyer does. Answers are read by
`channels.alipay.replies`. Amounts are integer fen inside and yuan strings on the wire
(`channels.alipay.amounts`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives.asymmetric import rsa

from channels.alipay.amounts import fen_to_yuan
from channels.alipay.crypto import SIGN_TYPE, dump_json, sign_request
from channels.base import CreateOrder, Method, RefundOrder
from channels.errors import ChannelRejected
from channels.http import HttpRequest

BEIJING = timezone(timedelta(hours=8), "CST")
GATEWAY_PATH = "/gateway.do"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,3})?")
USER_AGENT = "payrouter-alipay/0.1"
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


@dataclass(frozen=True)
class App:
    """Our side of an account: who signs requests and whose signatures we accept."""

    app_id: str
    private_key: rsa.RSAPrivateKey
    alipay_key: rsa.RSAPublicKey


def format_time(moment: datetime) -> str:
    """`YYYY-MM-DD HH:MM:SS` in Beijing time, from a timezone-aware time."""
    if moment.tzinfo is None:
        raise ValueError("an Alipay time must be timezone-aware")
    return moment.astimezone(BEIJING).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    """A `YYYY-MM-DD HH:MM:SS` Beijing time, with optional milliseconds (`gmt_refund`).

    Raises `ValueError`.
    """
    if _TIME.fullmatch(text) is None:
        raise ValueError(f"time {text[:40]!r} is not YYYY-MM-DD HH:MM:SS")
    try:
        moment = datetime.strptime(text[:19], TIME_FORMAT).replace(tzinfo=BEIJING)
    except ValueError:
        raise ValueError(f"time {text!r} is not a valid date and time") from None
    fraction = text[20:]
    return moment.replace(microsecond=int(fraction.ljust(6, "0"))) if fraction else moment


def gateway_url(base_url: str) -> str:
    return base_url.rstrip("/") + GATEWAY_PATH


def signed_params(
    app: App,
    api_method: str,
    biz: Mapping[str, Any],
    *,
    now: datetime,
    notify_url: str | None = None,
    return_url: str | None = None,
) -> dict[str, str]:
    """The common parameters plus `biz_content`, signed."""
    params = {
        "app_id": app.app_id,
        "method": api_method,
        "format": "JSON",
        "charset": "utf-8",
        "sign_type": SIGN_TYPE,
        "timestamp": format_time(now),
        "version": "1.0",
        "notify_url": notify_url or "",
        "return_url": return_url or "",
        "biz_content": dump_json(biz),
    }
    return sign_request(app.private_key, params)


def server_request(gateway: str, params: Mapping[str, str]) -> HttpRequest:
    """A server call: the signed parameters POSTed as a UTF-8 form."""
    headers = {
        "Content-Type": "application/x-www-form-urlencoded;charset=utf-8",
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
    }
    return HttpRequest("POST", gateway, headers, urlencode(params).encode())


def browser_url(gateway: str, params: Mapping[str, str]) -> str:
    """The URL a buyer's browser opens for page and wap payments."""
    return f"{gateway}?{urlencode(params)}"


def order_string(params: Mapping[str, str]) -> str:
    """What the Alipay app SDK's `payV2` takes: the signed parameters, URL-encoded."""
    return urlencode(params)


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
