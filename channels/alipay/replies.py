"""Alipay gateway answers: verify them, then read them as `channels.base` values. No I/O.

`read_reply` insists on Alipay's valid signature over the exact bytes of the `_response`
object (or `error_response`) and returns a `Reply`; `parse_*` turn replies into trades and
refunds, and `reply_error` maps Alipay's codes onto `channels.errors`:

- 10000 is success; 10003 (`alipay.trade.pay`) is a barcode payment the buyer is confirming;
- 20000 and `ACQ.SYSTEM_ERROR` mean "may or may not have happened": `ChannelOutcomeUnknown`;
- 4000x are refusals, `ChannelRejected` with the `sub_code`, the fault being the buyer's
  (balance, payment code), the account's (keys, contract, permissions) or else our request's;
- HTTP 429/503 is `ChannelUnavailable`; any other status, or anything unsigned or unverifiable,
  `ChannelOutcomeUnknown`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from channels.alipay.amounts import yuan_to_fen
from channels.alipay.crypto import ERROR_RESPONSE, VerificationError, open_answer
from channels.alipay.protocol import parse_time
from channels.base import (
    Action,
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
from channels.http import HttpAnswer

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
    if not isinstance(code, str) or not (code.isascii() and code.isdigit()):
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
        try:
            amount = _amount(reply.data, "total_amount")
        except ValueError as exc:
            raise ChannelOutcomeUnknown(f"unreadable {reply.api_method} answer: {exc}") from exc
        return CreateResult(
            Action("none"), TradeState.PENDING, reply.text("trade_no"), amount=amount
        )
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
        amount = _amount(reply.data, "total_amount")
    except ValueError as exc:
        raise ChannelOutcomeUnknown(f"unreadable {reply.api_method} answer: {exc}") from exc
    return CreateResult(Action("none"), TradeState.SUCCEEDED, trade_no, paid_at, amount, "CNY")


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
