"""Alipay OpenAPI messages: build signed gateway requests, read verified answers. No I/O.

Every call is one set of parameters for `/gateway.do`: the common ones (`app_id`, `method`,
`charset=utf-8`, `sign_type=RSA2`, `timestamp` in Beijing time, `version=1.0`, `notify_url`,
`return_url`, `biz_content` JSON) and `sign`. Server calls are POSTed as a form; page and wap
payments become a URL the buyer's browser opens, and app payments an order string the Alipay
app takes: neither reaches Alipay before the buyer does.

Answers are read with `read_reply`, which insists on a valid Alipay signature over the exact
`_response` bytes; `parse_*` functions turn the reply into `channels.base` values. Amounts
are integer fen inside and yuan strings on the wire (`channels.alipay.amounts`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives.asymmetric import rsa

from channels.alipay.amounts import fen_to_yuan, yuan_to_fen
from channels.alipay.crypto import (
    ERROR_RESPONSE,
    SIGN_TYPE,
    VerificationError,
    dump_json,
    open_answer,
    sign_request,
)
from channels.base import (
    Action,
    CreateOrder,
    CreateResult,
    Method,
    RefundOrder,
    RefundState,
    RefundStatus,
    TradeState,
    TradeStatus,
)
from channels.errors import (
    ChannelError,
    ChannelOutcomeUnknown,
    ChannelRejected,
    ChannelUnavailable,
    Fault,
)
from channels.http import HttpAnswer, HttpRequest

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

TRADE_STATES: Mapping[str, TradeState] = {
    "WAIT_BUYER_PAY": TradeState.PENDING,
    "TRADE_SUCCESS": TradeState.SUCCEEDED,
    "TRADE_FINISHED": TradeState.SUCCEEDED,
    "TRADE_CLOSED": TradeState.CLOSED,
}

CODE_SUCCESS = "10000"
CODE_PAYING = "10003"
"""`alipay.trade.pay`: created, the buyer is confirming on their phone."""
CODE_UNAVAILABLE = "20000"
CODE_BUSINESS_FAILED = "40004"

NOT_FOUND_SUB_CODES = frozenset({"ACQ.TRADE_NOT_EXIST"})
UNKNOWN_SUB_CODES = frozenset({"ACQ.SYSTEM_ERROR", "isp.unknow-error", "aop.ACQ.SYSTEM_ERROR"})
"""Alipay's "we may or may not have done it; query" answers."""
BUYER_SUB_CODES = frozenset(
    {
        "ACQ.BUYER_BALANCE_NOT_ENOUGH",
        "ACQ.BUYER_BANKCARD_BALANCE_NOT_ENOUGH",
        "ACQ.BUYER_ENABLE_STATUS_FORBID",
        "ACQ.BUYER_PAYMENT_AMOUNT_DAY_LIMIT_ERROR",
        "ACQ.BUYER_PAYMENT_AMOUNT_MONTH_LIMIT_ERROR",
        "ACQ.BUYER_SELLER_EQUAL",
        "ACQ.BUYER_UNSUPPORT_ADVANCE",
        "ACQ.ERROR_BUYER_CERTIFY_LEVEL_LIMIT",
        "ACQ.PAYMENT_AUTH_CODE_INVALID",
        "ACQ.PAYMENT_FAIL",
        "ACQ.PAYMENT_REQUEST_HAS_RISK",
        "ACQ.PAYER_UNMATCHED",
        "ACQ.USER_FACE_PAYMENT_SWITCH_OFF",
    }
)
"""Refusals caused by the buyer (their code, balance or limits), not by our request."""
CHANNEL_SUB_CODES = frozenset(
    {
        "isv.invalid-signature",
        "isv.invalid-app-id",
        "isv.insufficient-isv-permissions",
        "isv.insufficient-user-permissions",
        "ACQ.ACCESS_FORBIDDEN",
        "ACQ.SELLER_BEEN_BLOCKED",
        "ACQ.SELLER_BALANCE_NOT_ENOUGH",
        "ACQ.PRODUCT_AMOUNT_LIMIT_ERROR",
    }
)
"""Refusals about this account's set-up (keys, contract, balance): another account may work."""
CHANNEL_CODES = frozenset({"20001", "40003", "40006"})


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


def map_trade_state(trade_status: str, *, paid: bool = False) -> TradeState:
    """`trade_status` → `TradeState`; a closed trade that was paid (fully refunded since) is
    `SUCCEEDED`, as the buyer's payment happened. Raises `ValueError` for an unknown word."""
    try:
        state = TRADE_STATES[trade_status]
    except KeyError:
        raise ValueError(f"unknown trade_status {trade_status!r}") from None
    if state is TradeState.CLOSED and paid:
        return TradeState.SUCCEEDED
    return state


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


@dataclass(frozen=True)
class Reply:
    """A verified answer: Alipay's codes and the rest of the `_response` object."""

    api_method: str
    code: str
    msg: str
    sub_code: str
    sub_msg: str
    data: Mapping[str, Any]

    @property
    def ok(self) -> bool:
        return self.code == CODE_SUCCESS

    def describe(self) -> str:
        text = f"Alipay {self.api_method} answered {self.code} {self.msg}".rstrip()
        if self.sub_code:
            text += f" {self.sub_code}"
        if self.sub_msg:
            text += f": {self.sub_msg[:200]}"
        return text

    def text(self, name: str) -> str | None:
        value = self.data.get(name)
        return value if isinstance(value, str) and value else None


def read_reply(answer: HttpAnswer, api_method: str, alipay_key: rsa.RSAPublicKey) -> Reply:
    """The verified reply in an answer. Raises a `ChannelError`.

    The gateway answers 200 to everything it processed; 429/503 mean it processed nothing
    (`ChannelUnavailable`); any other status, or a reply whose signature does not verify
    over the exact `_response` bytes, is `ChannelOutcomeUnknown`.
    """
    if answer.status in (429, 503):
        raise ChannelUnavailable(
            f"Alipay gateway answered {answer.status} to {api_method}", code=str(answer.status)
        )
    if answer.status != 200:
        raise ChannelOutcomeUnknown(
            f"Alipay gateway answered {answer.status} to {api_method}", code=str(answer.status)
        )
    try:
        signed = open_answer(answer.body, api_method)
    except VerificationError as exc:
        raise ChannelOutcomeUnknown(
            f"unreadable answer to {api_method}: {exc.message}", code="ANSWER_MALFORMED"
        ) from None
    payload = signed.payload
    code = payload.get("code")
    described = f"{signed.name} {code} {payload.get('sub_code') or ''}".rstrip()
    if signed.sign is None:
        raise ChannelOutcomeUnknown(
            f"unsigned answer to {api_method} ({described})", code="ANSWER_SIGNATURE"
        )
    if not signed.verified(alipay_key):
        raise ChannelOutcomeUnknown(
            f"answer to {api_method} does not verify with the Alipay public key ({described})",
            code="ANSWER_SIGNATURE",
        )
    if not isinstance(code, str) or not code.isdigit():
        raise ChannelOutcomeUnknown(f"answer to {api_method} has no code", code="ANSWER_MALFORMED")

    def text(name: str) -> str:
        value = payload.get(name)
        return value if isinstance(value, str) else ""

    reply = Reply(api_method, code, text("msg"), text("sub_code"), text("sub_msg"), payload)
    if signed.name == ERROR_RESPONSE and reply.ok:
        raise ChannelOutcomeUnknown(f"error_response with code 10000 to {api_method}")
    return reply


def reply_error(reply: Reply) -> ChannelError:
    """The `channels.errors` value for a reply that is not a success."""
    described = reply.describe()
    error_code = reply.sub_code or reply.code
    if reply.code == CODE_UNAVAILABLE or reply.sub_code in UNKNOWN_SUB_CODES:
        return ChannelOutcomeUnknown(described, code=error_code)
    if not reply.code.startswith("4"):
        return ChannelOutcomeUnknown(described, code=error_code)
    fault: Fault = "request"
    if reply.sub_code in BUYER_SUB_CODES:
        fault = "buyer"
    elif reply.sub_code in CHANNEL_SUB_CODES or reply.code in CHANNEL_CODES:
        fault = "channel"
    return ChannelRejected(described, code=error_code, fault=fault)


def _amount(data: Mapping[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} is not a string")
    return yuan_to_fen(value)


def _time(data: Mapping[str, Any], name: str) -> datetime | None:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        return None
    return parse_time(value)


def parse_trade(data: Mapping[str, Any], *, account_id: str | None = None) -> TradeStatus:
    """A trade from a query reply or a notification. Raises `ValueError`."""
    out_trade_no = data.get("out_trade_no")
    trade_status = data.get("trade_status")
    if not isinstance(out_trade_no, str) or not isinstance(trade_status, str):
        raise ValueError("the trade lacks out_trade_no or trade_status")
    paid_at = _time(data, "gmt_payment") or _time(data, "send_pay_date")
    trade_no = data.get("trade_no")
    return TradeStatus(
        order_no=out_trade_no,
        state=map_trade_state(trade_status, paid=paid_at is not None),
        channel_state=trade_status,
        channel_trade_no=trade_no if isinstance(trade_no, str) and trade_no else None,
        amount=_amount(data, "total_amount"),
        currency="CNY",
        paid_at=paid_at,
        account_id=account_id,
    )


def _check_order(reply: Reply, order_no: str) -> None:
    answered = reply.text("out_trade_no")
    if answered is not None and answered != order_no:
        raise ChannelOutcomeUnknown(f"the {reply.api_method} answer is about another order")


def parse_create_reply(method: Method, reply: Reply, order_no: str) -> CreateResult:
    """A verified precreate / create / pay reply → what to show the buyer."""
    if method == "barcode" and reply.code == CODE_PAYING:
        _check_order(reply, order_no)
        return CreateResult(Action("none"), TradeState.PENDING, reply.text("trade_no"))
    if not reply.ok:
        raise reply_error(reply)
    _check_order(reply, order_no)
    try:
        if method == "qr":
            qr_code = reply.text("qr_code")
            if qr_code is None:
                raise ValueError("the answer lacks qr_code")
            return CreateResult(Action("qr_code", qr_code=qr_code))
        trade_no = reply.text("trade_no")
        if trade_no is None:
            raise ValueError("the answer lacks trade_no")
        if method == "jsapi":
            return CreateResult(
                Action("app_params", params={"trade_no": trade_no}), TradeState.PENDING, trade_no
            )
        paid_at = _time(reply.data, "gmt_payment")
    except ValueError as exc:
        raise ChannelOutcomeUnknown(f"unreadable {reply.api_method} answer: {exc}") from exc
    return CreateResult(Action("none"), TradeState.SUCCEEDED, trade_no, paid_at)


def parse_query_reply(reply: Reply, order_no: str) -> TradeStatus:
    """A verified `alipay.trade.query` reply; ACQ.TRADE_NOT_EXIST is `NOT_FOUND`."""
    if reply.sub_code in NOT_FOUND_SUB_CODES:
        return TradeStatus(order_no, TradeState.NOT_FOUND, channel_state=reply.sub_code)
    if not reply.ok:
        raise reply_error(reply)
    try:
        trade = parse_trade(reply.data)
    except ValueError as exc:
        raise ChannelOutcomeUnknown(f"unreadable query answer: {exc}") from exc
    if trade.order_no != order_no:
        raise ChannelOutcomeUnknown("the query answer is about another order")
    return trade


def check_close_reply(reply: Reply) -> None:
    """Closed, or unknown to Alipay (never opened by the buyer): done. Else raises."""
    if reply.ok or reply.sub_code in NOT_FOUND_SUB_CODES:
        return
    raise reply_error(reply)


def parse_refund_reply(reply: Reply, refund: RefundOrder) -> RefundStatus | None:
    """A verified `alipay.trade.refund` reply.

    `fund_change: Y` is this refund, done. `N` is a repeat of an `out_request_no` Alipay has
    already refunded (nothing moved this time): `None`, so the caller confirms by query.
    """
    if not reply.ok:
        raise reply_error(reply)
    _check_order(reply, refund.payment.order_no)
    if reply.text("fund_change") != "Y":
        return None
    try:
        refunded_at = _time(reply.data, "gmt_refund_pay")
    except ValueError as exc:
        raise ChannelOutcomeUnknown(f"unreadable refund answer: {exc}") from exc
    return RefundStatus(
        refund_no=refund.refund_no,
        state=RefundState.SUCCEEDED,
        channel_state="fund_change=Y",
        order_no=refund.payment.order_no,
        amount=refund.amount,
        refunded_at=refunded_at,
    )


def parse_refund_query_reply(reply: Reply, refund: RefundOrder) -> RefundStatus:
    """A verified `alipay.trade.fastpay.refund.query` reply.

    Alipay's documentation: `refund_status` REFUND_SUCCESS is a refund done; without it the
    refund request was not received or failed, and the refund may be requested again with
    the same `out_request_no`: `NOT_FOUND`.
    """
    if reply.sub_code in NOT_FOUND_SUB_CODES:
        return RefundStatus(refund.refund_no, RefundState.NOT_FOUND, reply.sub_code)
    if not reply.ok:
        raise reply_error(reply)
    status = reply.text("refund_status")
    if status is None:
        return RefundStatus(refund.refund_no, RefundState.NOT_FOUND, "NOT_RECEIVED")
    answered = reply.text("out_request_no")
    if answered is not None and answered != refund.refund_no:
        raise ChannelOutcomeUnknown("the refund query answer is about another refund")
    if status != "REFUND_SUCCESS":
        raise ChannelOutcomeUnknown(f"unknown refund_status {status!r}")
    try:
        amount = _amount(reply.data, "refund_amount")
        refunded_at = _time(reply.data, "gmt_refund_pay")
    except ValueError as exc:
        raise ChannelOutcomeUnknown(f"unreadable refund query answer: {exc}") from exc
    return RefundStatus(
        refund_no=refund.refund_no,
        state=RefundState.SUCCEEDED,
        channel_state=status,
        order_no=refund.payment.order_no,
        amount=amount if amount is not None else refund.amount,
        refunded_at=refunded_at,
    )
