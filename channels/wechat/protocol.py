"""WeChat Pay API v3 messages: build signed requests, parse answers. Pure functions, no I/O.

The adapter sends what `build_*_request` returns with `channels.http.send`, checks a 2xx
answer with `channels.wechat.crypto.verify_answer` and turns it into `channels.base` values with
`parse_*_answer`. Signatures, pay-sign parameters and AES-GCM live in `channels.wechat.crypto`;
notification envelopes in `channels.wechat.notification`. Amounts are integer fen; times are
RFC 3339 in China time (`2018-06-08T10:34:56+08:00`) on the wire and timezone-aware
`datetime`s inside.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from yarl import URL

from channels.base import Action, CreateResult, Method, TradeState, TradeStatus
from channels.errors import (
    ChannelError,
    ChannelOutcomeUnknown,
    ChannelRejected,
    ChannelUnavailable,
    Fault,
)
from channels.http import HttpAnswer, HttpRequest
from channels.wechat.crypto import (
    app_pay_params,
    build_authorization,
    jsapi_pay_params,
)

CHINA_TIME = timezone(timedelta(hours=8), "CST")
USER_AGENT = "payrouter-wechat/0.1"

TRADE_STATES: Mapping[str, TradeState] = {
    "SUCCESS": TradeState.SUCCEEDED,
    "REFUND": TradeState.SUCCEEDED,
    "NOTPAY": TradeState.PENDING,
    "USERPAYING": TradeState.PENDING,
    "ACCEPT": TradeState.PENDING,
    "CLOSED": TradeState.CLOSED,
    "REVOKED": TradeState.CLOSED,
    "PAYERROR": TradeState.FAILED,
}

TRADE_TYPES: Mapping[Method, str] = {
    "qr": "native",
    "h5": "h5",
    "jsapi": "jsapi",
    "app": "app",
    "barcode": "codepay",
}
"""Our method → the last segment of `/v3/pay/transactions/{...}`."""

NOT_FOUND_CODES = frozenset({"ORDER_NOT_EXIST", "ORDERNOTEXIST", "RESOURCE_NOT_EXISTS"})
BUYER_CODES = frozenset(
    {"NOT_ENOUGH", "NOTENOUGH", "ACCOUNT_ERROR", "ACCOUNTERROR", "AUTH_CODE_INVALID"}
)
"""Payment refusals caused by the buyer (their balance, account or payment code)."""

ACK_ACCEPTED = {"code": "SUCCESS", "message": "成功"}
ACK_REFUSED = {"code": "FAIL", "message": "失败"}


@dataclass(frozen=True)
class Merchant:
    """The merchant side of an account: who signs requests."""

    mchid: str
    appid: str
    serial_no: str
    private_key: rsa.RSAPrivateKey


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


def map_trade_state(trade_state: str) -> TradeState:
    """WeChat `trade_state` → `TradeState`. Raises `ValueError` for an unknown word."""
    try:
        return TRADE_STATES[trade_state]
    except KeyError:
        raise ValueError(f"unknown trade_state {trade_state!r}") from None


def format_time(moment: datetime) -> str:
    """RFC 3339 in China time, seconds precision: `2018-06-08T10:34:56+08:00`."""
    if moment.tzinfo is None:
        raise ValueError("a WeChat time must be timezone-aware")
    return moment.astimezone(CHINA_TIME).replace(microsecond=0).isoformat()


def parse_time(text: str) -> datetime:
    """An RFC 3339 time with an offset. Raises `ValueError` for a naive or bad time."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"time {text!r} has no UTC offset")
    return moment


def dump_json(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def signed_request(
    merchant: Merchant,
    base_url: str,
    method: str,
    path_with_query: str,
    payload: Mapping[str, Any] | None,
    *,
    timestamp: int,
    nonce: str,
) -> HttpRequest:
    """A request signed over the path exactly as it will be sent (percent-encoded)."""
    url = URL(base_url.rstrip("/") + path_with_query)
    body = dump_json(payload) if payload is not None else b""
    authorization = build_authorization(
        mchid=merchant.mchid,
        serial_no=merchant.serial_no,
        key=merchant.private_key,
        method=method,
        path_with_query=url.raw_path_qs,
        body=body,
        timestamp=timestamp,
        nonce=nonce,
    )
    headers = {"Authorization": authorization, "Accept": "application/json"}
    headers["User-Agent"] = USER_AGENT
    if body:
        headers["Content-Type"] = "application/json"
    return HttpRequest(method, str(url), headers, body)


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


def decode_object(body: bytes) -> dict[str, Any]:
    """A JSON object, or `ValueError`."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ValueError("not JSON") from exc
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def error_code(answer: HttpAnswer) -> str | None:
    """The `code` of an error answer, or `None` when the body is not WeChat's error JSON."""
    try:
        code = decode_object(answer.body).get("code")
    except ValueError:
        return None
    return code if isinstance(code, str) and code else None


def error_from_answer(
    answer: HttpAnswer, *, buyer_codes: frozenset[str] = BUYER_CODES
) -> ChannelError:
    """The `channels.errors` value for an answer that is not a success.

    `buyer_codes` are the refusals blamed on the buyer rather than on our request.
    """
    status = answer.status
    code = error_code(answer)
    described = f"WeChat Pay answered {status} {code or '(no code)'}"
    message = _error_message(answer)
    if message:
        described = f"{described}: {message}"
    if status in (429, 503):
        return ChannelUnavailable(described, code=code or str(status))
    if status >= 500 or code is None or not 400 <= status < 500:
        return ChannelOutcomeUnknown(described, code=code or str(status))
    fault: Fault = "buyer" if code in buyer_codes else "request"
    return ChannelRejected(described, code=code, fault=fault)


def _error_message(answer: HttpAnswer) -> str:
    try:
        message = decode_object(answer.body).get("message")
    except ValueError:
        return ""
    return message[:200] if isinstance(message, str) else ""


def parse_transaction(data: Mapping[str, Any]) -> TradeStatus:
    """A transaction object (query answer, notification resource). Raises `ValueError`."""
    out_trade_no = data.get("out_trade_no")
    trade_state = data.get("trade_state")
    if not isinstance(out_trade_no, str) or not isinstance(trade_state, str):
        raise ValueError("transaction lacks out_trade_no or trade_state")
    amount = data.get("amount") or {}
    total = amount.get("total") if isinstance(amount, Mapping) else None
    if total is not None and (not isinstance(total, int) or isinstance(total, bool)):
        raise ValueError("amount.total is not an integer")
    currency = amount.get("currency") if isinstance(amount, Mapping) else None
    success_time = data.get("success_time")
    transaction_id = data.get("transaction_id")
    mchid = data.get("mchid")
    return TradeStatus(
        order_no=out_trade_no,
        state=map_trade_state(trade_state),
        channel_state=trade_state,
        channel_trade_no=transaction_id if isinstance(transaction_id, str) else None,
        amount=total,
        currency=currency if isinstance(currency, str) else None,
        paid_at=parse_time(success_time) if isinstance(success_time, str) else None,
        account_id=mchid if isinstance(mchid, str) else None,
    )


def parse_create_answer(
    method: Method, answer: HttpAnswer, merchant: Merchant, *, timestamp: int, nonce: str
) -> CreateResult:
    """A verified create answer → what to show the buyer. Raises a `ChannelError`.

    `timestamp` and `nonce` are used for the jsapi/app pay-sign parameters.
    """
    if not 200 <= answer.status < 300:
        raise error_from_answer(answer)
    try:
        data = decode_object(answer.body)
        if method == "barcode":
            return _codepay_result(answer.status, data)
        field_name = {"qr": "code_url", "h5": "h5_url"}.get(method, "prepay_id")
        value = data.get(field_name)
        if not isinstance(value, str) or not value:
            raise ValueError(f"the answer lacks {field_name}")
    except ValueError as exc:
        raise ChannelOutcomeUnknown(f"unreadable create answer: {exc}") from exc
    if method == "qr":
        return CreateResult(Action("qr_code", qr_code=value))
    if method == "h5":
        return CreateResult(Action("redirect", url=value))
    if method == "jsapi":
        params = jsapi_pay_params(
            merchant.private_key,
            appid=merchant.appid,
            prepay_id=value,
            timestamp=timestamp,
            nonce=nonce,
        )
    else:
        params = app_pay_params(
            merchant.private_key,
            appid=merchant.appid,
            mchid=merchant.mchid,
            prepay_id=value,
            timestamp=timestamp,
            nonce=nonce,
        )
    return CreateResult(Action("app_params", params=params))


def _codepay_result(status: int, data: Mapping[str, Any]) -> CreateResult:
    if status == 202 or data.get("code") in ("USERPAYING", "USER_PAYING"):
        return CreateResult(Action("none"), state=TradeState.PENDING)
    trade = parse_transaction(data)
    return CreateResult(
        Action("none"),
        state=trade.state,
        channel_trade_no=trade.channel_trade_no,
        paid_at=trade.paid_at,
        amount=trade.amount,
        currency=trade.currency,
    )


def parse_query_answer(answer: HttpAnswer, out_trade_no: str) -> TradeStatus:
    """A verified query answer; 404 ORDER_NOT_EXIST is `TradeState.NOT_FOUND`."""
    if answer.status == 404 and error_code(answer) in NOT_FOUND_CODES:
        return TradeStatus(out_trade_no, TradeState.NOT_FOUND, channel_state="ORDER_NOT_EXIST")
    if answer.status != 200:
        raise error_from_answer(answer)
    try:
        trade = parse_transaction(decode_object(answer.body))
    except ValueError as exc:
        raise ChannelOutcomeUnknown(f"unreadable query answer: {exc}") from exc
    if trade.order_no != out_trade_no:
        raise ChannelOutcomeUnknown("the query answer is about another order")
    return trade


def parse_close_answer(answer: HttpAnswer) -> None:
    """204 (or an order WeChat does not know) is done; anything else raises."""
    if answer.status in (200, 204):
        return
    if answer.status == 404 and error_code(answer) in NOT_FOUND_CODES:
        return
    raise error_from_answer(answer)
