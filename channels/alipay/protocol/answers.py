"""Alipay gateway answers: verify them, then read them as `channels.base` values. No I/O.

`read_reply` insists on Alipay's valid signature over the exact bytes of the `_response`
object (or `error_response`) and returns a `Reply`; `parse_*_answer` turn replies into trades
and refunds, and `channels.alipay.protocol.codes` maps Alipay's codes onto `channels.errors`:

- 10000 is success; 10003 (`alipay.trade.pay`) is a barcode payment the buyer is confirming;
- 20000 and `ACQ.SYSTEM_ERROR` mean "may or may not have happened": `ChannelOutcomeUnknown`;
- 4000x are refusals, `ChannelRejected` with the `sub_code`, the fault being the buyer's
  (balance, payment code), the account's (keys, contract, permissions) or else our request's;
- HTTP 429/503 is `ChannelUnavailable`; any other status, or anything unsigned or unverifiable,
  `ChannelOutcomeUnknown`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from channels.alipay.crypto import ERROR_RESPONSE, VerificationError, open_answer
from channels.alipay.protocol.codes import (
    CODE_PAYING,
    NOT_FOUND_SUB_CODES,
    map_refund_state,
    map_trade_state,
    reply_error,
)
from channels.alipay.protocol.wire import Reply, parse_time, yuan_to_fen
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
from channels.errors import ChannelOutcomeUnknown, ChannelUnavailable
from channels.http import HttpAnswer


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


def parse_create_answer(method: Method, reply: Reply, order_no: str) -> CreateResult:
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


def parse_query_answer(reply: Reply, order_no: str) -> TradeStatus:
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


def parse_close_answer(reply: Reply) -> None:
    """Closed, or unknown to Alipay (never opened by the buyer): done. Else raises."""
    if reply.ok or reply.sub_code in NOT_FOUND_SUB_CODES:
        return
    raise reply_error(reply)


def parse_refund_answer(reply: Reply, refund: RefundOrder) -> RefundStatus | None:
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


def parse_refund_query_answer(reply: Reply, refund: RefundOrder) -> RefundStatus:
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
    try:
        state = map_refund_state(status)
    except ValueError as exc:
        raise ChannelOutcomeUnknown(str(exc)) from None
    try:
        amount = _amount(reply.data, "refund_amount")
        refunded_at = _time(reply.data, "gmt_refund_pay")
    except ValueError as exc:
        raise ChannelOutcomeUnknown(f"unreadable refund query answer: {exc}") from exc
    return RefundStatus(
        refund_no=refund.refund_no,
        state=state,
        channel_state=status,
        order_no=refund.payment.order_no,
        amount=amount if amount is not None else refund.amount,
        refunded_at=refunded_at,
    )


def parse_statement_answer(reply: Reply) -> str | None:
    """The verified bill reply's `bill_download_url`; `None` when Alipay has no bill for the
    day (`isp.bill_not_exist`: nothing happened). Other failures raise."""
    if reply.sub_code == "isp.bill_not_exist":
        return None
    if not reply.ok:
        raise reply_error(reply)
    url = reply.text("bill_download_url")
    if url is None:
        raise ChannelOutcomeUnknown("the bill reply has no bill_download_url", code="BAD_ANSWER")
    return url
