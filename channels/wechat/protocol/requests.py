"""WeChat Pay API v3 requests: what the adapter sends. Pure functions, no I/O.

    POST /v3/pay/transactions/{type}                  create (native, h5, jsapi, app, codepay)
    GET  /v3/pay/transactions/out-trade-no/{no}       query by our order number
    POST /v3/pay/transactions/out-trade-no/{no}/close close an unpaid order (answers 204)
    POST /v3/refund/domestic/refunds                  apply for a refund (`out_refund_no`
                                                      dedupes: a repeat returns the refund)
    GET  /v3/refund/domestic/refunds/{out_refund_no}  query one refund
    GET  /v3/bill/tradebill?bill_date=                the day's trade bill (hash, URL)

The adapter sends what `build_*_request` returns with `channels.http.send` and reads the answer
with `channels.wechat.protocol.answers`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from yarl import URL

from channels.base import Method
from channels.errors import ChannelOutcomeUnknown, ChannelRejected
from channels.http import HttpRequest
from channels.wechat.protocol.wire import Merchant, format_time, signed_request

TRADE_TYPES: Mapping[Method, str] = {
    "qr": "native",
    "h5": "h5",
    "jsapi": "jsapi",
    "app": "app",
    "barcode": "codepay",
}
"""Our method → the last segment of `/v3/pay/transactions/{...}`."""


@dataclass(frozen=True)
class OrderRequest:
    """What a create request needs, in WeChat's terms (see `channels.base.CreateOrder`)."""

    method: Method
    out_trade_no: str
    description: str
    total: int
    currency: str
    notify_url: str
    time_expire: datetime | None = None
    client_ip: str | None = None
    openid: str | None = None
    auth_code: str | None = None


def create_payload(merchant: Merchant, order: OrderRequest) -> dict[str, Any]:
    """The JSON body of `POST /v3/pay/transactions/{type}`.

    Raises `ChannelRejected(fault="request")` when the method needs an input the order lacks.
    """
    payload: dict[str, Any] = {
        "appid": merchant.appid,
        "mchid": merchant.mchid,
        "description": order.description,
        "out_trade_no": order.out_trade_no,
    }
    if order.time_expire is not None:
        if order.time_expire.tzinfo is None:
            raise ChannelRejected(
                "expires_at must be timezone-aware", code="PARAM_ERROR", fault="request"
            )
        payload["time_expire"] = format_time(order.time_expire)
    if order.method != "barcode":
        payload["notify_url"] = order.notify_url
    payload["amount"] = {"total": order.total, "currency": order.currency}
    if order.method == "h5":
        payload["scene_info"] = {
            "payer_client_ip": _required(order.client_ip, "client_ip", "h5"),
            "h5_info": {"type": "Wap"},
        }
    elif order.method == "jsapi":
        payload["payer"] = {"openid": _required(order.openid, "payer_id", "jsapi")}
    elif order.method == "barcode":
        payload["payer"] = {"auth_code": _required(order.auth_code, "auth_code", "barcode")}
        if order.client_ip:
            payload["scene_info"] = {"device_ip": order.client_ip}
    return payload


def _required(value: str | None, name: str, method: str) -> str:
    if not value:
        raise ChannelRejected(
            f"{name} is required for {method} payments", code="PARAM_ERROR", fault="request"
        )
    return value


def build_create_request(
    merchant: Merchant, base_url: str, order: OrderRequest, *, timestamp: int, nonce: str
) -> HttpRequest:
    """Create (place) an order: native, h5, jsapi, app or codepay."""
    trade_type = TRADE_TYPES.get(order.method)
    if trade_type is None:
        raise ChannelRejected(
            f"WeChat Pay has no {order.method!r} method", code="UNSUPPORTED", fault="request"
        )
    path = f"/v3/pay/transactions/{trade_type}"
    payload = create_payload(merchant, order)
    return signed_request(
        merchant, base_url, "POST", path, payload, timestamp=timestamp, nonce=nonce
    )


def build_query_request(
    merchant: Merchant, base_url: str, out_trade_no: str, *, timestamp: int, nonce: str
) -> HttpRequest:
    """Query by our order number."""
    path = f"/v3/pay/transactions/out-trade-no/{out_trade_no}?mchid={merchant.mchid}"
    return signed_request(merchant, base_url, "GET", path, None, timestamp=timestamp, nonce=nonce)


def build_close_request(
    merchant: Merchant, base_url: str, out_trade_no: str, *, timestamp: int, nonce: str
) -> HttpRequest:
    """Close an unpaid order; WeChat answers 204."""
    path = f"/v3/pay/transactions/out-trade-no/{out_trade_no}/close"
    payload = {"mchid": merchant.mchid}
    return signed_request(
        merchant, base_url, "POST", path, payload, timestamp=timestamp, nonce=nonce
    )


REFUND_PATH = "/v3/refund/domestic/refunds"


@dataclass(frozen=True)
class RefundRequest:
    """What an apply-for-refund request needs, in WeChat's terms (see `RefundOrder`)."""

    out_trade_no: str
    out_refund_no: str
    refund: int
    total: int
    currency: str
    notify_url: str
    reason: str | None = None


def refund_payload(refund: RefundRequest) -> dict[str, Any]:
    """The JSON body of `POST /v3/refund/domestic/refunds`."""
    payload: dict[str, Any] = {
        "out_trade_no": refund.out_trade_no,
        "out_refund_no": refund.out_refund_no,
    }
    if refund.reason:
        payload["reason"] = refund.reason
    payload["notify_url"] = refund.notify_url
    payload["amount"] = {
        "refund": refund.refund,
        "total": refund.total,
        "currency": refund.currency,
    }
    return payload


def build_refund_request(
    merchant: Merchant, base_url: str, refund: RefundRequest, *, timestamp: int, nonce: str
) -> HttpRequest:
    """Apply for a refund of (part of) a paid order."""
    return signed_request(
        merchant,
        base_url,
        "POST",
        REFUND_PATH,
        refund_payload(refund),
        timestamp=timestamp,
        nonce=nonce,
    )


def build_refund_query_request(
    merchant: Merchant, base_url: str, out_refund_no: str, *, timestamp: int, nonce: str
) -> HttpRequest:
    """Query one refund by our refund number."""
    path = f"{REFUND_PATH}/{out_refund_no}"
    return signed_request(merchant, base_url, "GET", path, None, timestamp=timestamp, nonce=nonce)


# WeChat's web authorisation (网页授权), by which the hosted checkout learns a buyer's openid:
# the browser is sent to `oauth_authorize_url` and comes back with a code at once
# (`snsapi_base` asks the buyer nothing); the server trades the code, once and within five
# minutes, at `oauth_token_url` (`answers.parse_oauth_token_answer`).
OAUTH_OPEN_HOST = "https://open.weixin.qq.com"
OAUTH_API_HOST = "https://api.weixin.qq.com"


def oauth_authorize_url(open_host: str, appid: str, redirect_uri: str, state: str) -> str:
    """Where the buyer's WeChat is sent to come back to `redirect_uri` with a code."""
    query = urlencode(
        {
            "appid": appid,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": "snsapi_base",
            "state": state,
        }
    )
    return f"{open_host}/connect/oauth2/authorize?{query}#wechat_redirect"


def oauth_token_url(api_host: str, appid: str, secret: str, code: str) -> str:
    """The server-side call that trades a code for the buyer's openid (it carries the
    AppSecret: never log it)."""
    query = urlencode(
        {"appid": appid, "secret": secret, "code": code, "grant_type": "authorization_code"}
    )
    return f"{api_host}/sns/oauth2/access_token?{query}"


def build_statement_request(
    merchant: Merchant, base_url: str, day: date, *, timestamp: int, nonce: str
) -> HttpRequest:
    """`GET /v3/bill/tradebill` for every line of `day` (payments and refunds), gzip'd."""
    path = f"/v3/bill/tradebill?bill_date={day.isoformat()}&bill_type=ALL&tar_type=GZIP"
    return signed_request(merchant, base_url, "GET", path, None, timestamp=timestamp, nonce=nonce)


def build_statement_download_request(
    merchant: Merchant, base_url: str, download_url: str, *, timestamp: int, nonce: str
) -> HttpRequest:
    """The signed `GET` of a bill's `download_url`.

    The URL must be on the account's own host: the request carries our signature, which is
    sent nowhere else. Raises `ChannelOutcomeUnknown` otherwise.
    """
    base, target = URL(base_url), URL(download_url)
    if (target.scheme, target.host, target.port) != (base.scheme, base.host, base.port):
        raise ChannelOutcomeUnknown(
            "the bill's download_url is not on the account's host", code="STATEMENT_URL"
        )
    return signed_request(
        merchant, base_url, "GET", target.raw_path_qs, None, timestamp=timestamp, nonce=nonce
    )
