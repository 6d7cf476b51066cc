"""UnionPay ACP 5.1.0 answers: verify them, then read them as `channels.base` values. No I/O."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import datetime

from channels.base import (
    Action,
    CreateResult,
    Method,
    RefundState,
    RefundStatus,
    TradeState,
    TradeStatus,
)
from channels.errors import ChannelOutcomeUnknown, ChannelUnavailable
from channels.http import HttpAnswer
from channels.unionpay.crypto import ChainVerifier, VerificationError, verify_signed
from channels.unionpay.protocol.codes import (
    NO_FILE,
    NOT_FOUND,
    PROCESSING,
    VOIDED,
    error_for,
    map_refund_state,
    map_trade_state,
)
from channels.unionpay.protocol.wire import (
    WireError,
    currency_of,
    decode_answer,
    parse_amount,
    parse_txn_time,
)


def read_answer(
    answer: HttpAnswer, verifier: ChainVerifier, now: datetime, sent: Mapping[str, str]
) -> dict[str, str]:
    """A verified answer's fields about the request `sent`. Raises a `ChannelError`."""
    if answer.status in (429, 503):
        raise ChannelUnavailable(f"UnionPay answered HTTP {answer.status}", code=str(answer.status))
    if answer.status != 200:
        raise ChannelOutcomeUnknown(
            f"UnionPay answered HTTP {answer.status}", code=str(answer.status)
        )
    try:
        fields = decode_answer(answer.body)
        verify_signed(fields, verifier, now)
    except WireError as exc:
        raise ChannelOutcomeUnknown(f"unreadable answer from UnionPay: {exc}") from None
    except VerificationError as exc:
        raise ChannelOutcomeUnknown(
            f"unverifiable answer from UnionPay: {exc.message}", code="ANSWER_SIGNATURE"
        ) from None
    # A query answer describes the queried transaction (its txnType, not 00), so only the
    # identity is compared.
    for name in ("merId", "orderId", "txnTime"):
        if name in fields and fields[name] != sent.get(name):
            raise ChannelOutcomeUnknown(f"UnionPay's answer names another {name}")
    if not fields.get("respCode"):
        raise ChannelOutcomeUnknown("UnionPay's answer has no respCode")
    return fields


def parse_create_answer(method: Method, fields: Mapping[str, str]) -> CreateResult:
    """A verified app, QR or barcode answer → what to show the buyer. Raises a `ChannelError`."""
    code = fields["respCode"]
    query_id = fields.get("queryId") or None
    if method == "barcode" and (code == "00" or code in PROCESSING):
        state = TradeState.SUCCEEDED if code == "00" else TradeState.PENDING
        return CreateResult(
            Action("none"),
            state=state,
            channel_trade_no=query_id,
            amount=_amount(fields),
            currency=currency_of(fields.get("currencyCode", "156")),
        )
    if code != "00":
        raise error_for(code, fields.get("respMsg", ""), "payment")
    name = "tn" if method == "app" else "qrCode"
    value = fields.get(name)
    if not value:
        raise ChannelOutcomeUnknown(f"UnionPay's answer lacks {name}")
    if method == "app":
        return CreateResult(Action("app_params", params={"tn": value}), channel_trade_no=query_id)
    return CreateResult(Action("qr_code", qr_code=value), channel_trade_no=query_id)


def _amount(fields: Mapping[str, str]) -> int | None:
    text = fields.get("txnAmt")
    if text is None:
        return None
    try:
        return parse_amount(text)
    except WireError as exc:
        raise ChannelOutcomeUnknown(f"unreadable answer from UnionPay: {exc}") from None


def parse_query_answer(fields: Mapping[str, str], order_no: str) -> TradeStatus:
    """A verified query answer about a payment; respCode 34 is `NOT_FOUND`."""
    code = fields["respCode"]
    if code == NOT_FOUND:
        return TradeStatus(order_no, TradeState.NOT_FOUND, channel_state=code)
    if code != "00":
        raise error_for(code, fields.get("respMsg", ""), "query")
    orig = fields.get("origRespCode", "")
    if not orig:
        raise ChannelOutcomeUnknown("UnionPay's query answer has no origRespCode")
    return TradeStatus(
        order_no=order_no,
        state=map_trade_state(orig),
        channel_state=orig,
        channel_trade_no=fields.get("queryId") or None,
        amount=_amount(fields),
        currency=currency_of(fields.get("currencyCode", "156")),
        paid_at=_trace_time(fields),
        account_id=fields.get("merId") or None,
    )


def _trace_time(fields: Mapping[str, str]) -> datetime | None:
    """When UnionPay booked a paid transaction: `traceTime` (MMDDhhmmss, Beijing) in the
    year of its `txnTime` (the next year when the order was made on 31 December and paid on
    1 January). None when either is missing or malformed: the time is a detail, not a reason
    to refuse the answer."""
    trace, txn = fields.get("traceTime", ""), fields.get("txnTime", "")
    if len(trace) != 10 or not trace.isdigit():
        return None
    try:
        ordered = parse_txn_time(txn)
        year = ordered.year + (1 if trace[:2] < ordered.strftime("%m") else 0)
        return parse_txn_time(f"{year}{trace}")
    except WireError:
        return None


def parse_refund_answer(fields: Mapping[str, str], refund_no: str, order_no: str) -> RefundStatus:
    """A verified refund answer. `00` means accepted, not refunded: the result comes later."""
    code = fields["respCode"]
    if code != "00" and code not in PROCESSING:
        raise error_for(code, fields.get("respMsg", ""), "refund")
    return RefundStatus(
        refund_no=refund_no,
        state=RefundState.PENDING,
        channel_state=code,
        order_no=order_no,
        channel_refund_no=fields.get("queryId") or None,
        amount=_amount(fields),
    )


def parse_refund_query_answer(
    fields: Mapping[str, str], refund_no: str, order_no: str
) -> RefundStatus:
    """A verified query answer about a refund; respCode 34 is `NOT_FOUND`."""
    code = fields["respCode"]
    if code == NOT_FOUND:
        return RefundStatus(refund_no, RefundState.NOT_FOUND, channel_state=code)
    if code != "00":
        raise error_for(code, fields.get("respMsg", ""), "refund query")
    orig = fields.get("origRespCode", "")
    if not orig:
        raise ChannelOutcomeUnknown("UnionPay's query answer has no origRespCode")
    return RefundStatus(
        refund_no=refund_no,
        state=map_refund_state(orig),
        channel_state=orig,
        order_no=order_no,
        channel_refund_no=fields.get("queryId") or None,
        amount=_amount(fields),
    )


def parse_close_answer(fields: Mapping[str, str]) -> None:
    """`00`, or `45` (already voided), close the order; anything else raises."""
    code = fields["respCode"]
    if code in ("00", VOIDED):
        return
    raise error_for(code, fields.get("respMsg", ""), "void")


def parse_statement_answer(fields: Mapping[str, str]) -> bytes | None:
    """A verified file-transfer answer's `fileContent`, base64-decoded (still deflated);
    `None` for respCode 98: no file, nothing was settled that day. Other codes raise."""
    code = fields["respCode"]
    if code == NO_FILE:
        return None
    if code != "00":
        raise error_for(code, fields.get("respMsg", ""), "file transfer")
    content = fields.get("fileContent")
    if not content:
        raise ChannelOutcomeUnknown("UnionPay's file-transfer answer has no fileContent")
    try:
        return base64.b64decode(content, validate=True)
    except ValueError:
        raise ChannelOutcomeUnknown("UnionPay's fileContent is not base64") from None
