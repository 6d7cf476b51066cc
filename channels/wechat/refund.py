"""WeChat Pay API v3 domestic refunds: build signed requests, parse answers. Pure, no I/O.

    POST /v3/refund/domestic/refunds                  apply (`out_refund_no` dedupes: a repeat
                                                      returns the refund already made)
    GET  /v3/refund/domestic/refunds/{out_refund_no}  query; 404 RESOURCE_NOT_EXISTS if unknown

Both answer with a refund object whose `status` is SUCCESS, PROCESSING, CLOSED or ABNORMAL.
The same object, slimmed down (`refund_status` instead of `status`), is the resource of a
`REFUND.*` notification (see `channels.wechat.notification`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from channels.base import RefundState, RefundStatus
from channels.errors import ChannelOutcomeUnknown
from channels.http import HttpAnswer, HttpRequest
from channels.wechat.protocol import (
    NOT_FOUND_CODES,
    Merchant,
    decode_object,
    error_code,
    error_from_answer,
    parse_time,
    signed_request,
)

REFUND_PATH = "/v3/refund/domestic/refunds"

REFUND_STATES: Mapping[str, RefundState] = {
    "SUCCESS": RefundState.SUCCEEDED,
    "PROCESSING": RefundState.PENDING,
    "CLOSED": RefundState.FAILED,
    "ABNORMAL": RefundState.FAILED,
}

REFUND_BUYER_CODES = frozenset({"USER_ACCOUNT_ABNORMAL"})
"""Refusals caused by the buyer's account. `NOT_ENOUGH` on a refund is the merchant's balance:
a refusal of our request, unlike `NOT_ENOUGH` on a payment."""


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


def map_refund_state(status: str) -> RefundState:
    """WeChat refund `status` → `RefundState`. Raises `ValueError` for an unknown word."""
    try:
        return REFUND_STATES[status]
    except KeyError:
        raise ValueError(f"unknown refund status {status!r}") from None


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


def parse_refund(data: Mapping[str, Any]) -> RefundStatus:
    """A refund object (answer, or notification resource). Raises `ValueError`."""
    out_refund_no = data.get("out_refund_no")
    status = data.get("status", data.get("refund_status"))
    if not isinstance(out_refund_no, str) or not isinstance(status, str):
        raise ValueError("refund lacks out_refund_no or status")
    amount = data.get("amount") or {}
    refund = amount.get("refund") if isinstance(amount, Mapping) else None
    if refund is not None and (not isinstance(refund, int) or isinstance(refund, bool)):
        raise ValueError("amount.refund is not an integer")
    out_trade_no = data.get("out_trade_no")
    refund_id = data.get("refund_id")
    success_time = data.get("success_time")
    return RefundStatus(
        refund_no=out_refund_no,
        state=map_refund_state(status),
        channel_state=status,
        order_no=out_trade_no if isinstance(out_trade_no, str) else None,
        channel_refund_no=refund_id if isinstance(refund_id, str) else None,
        amount=refund,
        refunded_at=parse_time(success_time) if isinstance(success_time, str) else None,
    )


def _checked(
    answer: HttpAnswer, out_refund_no: str, out_trade_no: str | None, what: str
) -> RefundStatus:
    try:
        status = parse_refund(decode_object(answer.body))
    except ValueError as exc:
        raise ChannelOutcomeUnknown(f"unreadable {what} answer: {exc}") from exc
    if status.refund_no != out_refund_no:
        raise ChannelOutcomeUnknown(f"the {what} answer is about another refund")
    if out_trade_no is not None and status.order_no not in (None, out_trade_no):
        raise ChannelOutcomeUnknown(f"the {what} answer is about a refund of another order")
    return status


def parse_refund_answer(
    answer: HttpAnswer, out_refund_no: str, out_trade_no: str | None = None
) -> RefundStatus:
    """A verified apply-for-refund answer. Raises a `ChannelError` for a refusal.

    With `out_trade_no`, an answer about a refund of another order is `ChannelOutcomeUnknown`.

    An unknown or unpaid order is `404 RESOURCE_NOT_EXISTS`: a refusal (`ChannelRejected`).
    """
    if answer.status != 200:
        raise error_from_answer(answer, buyer_codes=REFUND_BUYER_CODES)
    return _checked(answer, out_refund_no, out_trade_no, "refund")


def parse_refund_query_answer(
    answer: HttpAnswer, out_refund_no: str, out_trade_no: str | None = None
) -> RefundStatus:
    """A verified refund query answer; `404 RESOURCE_NOT_EXISTS` is `RefundState.NOT_FOUND`."""
    if answer.status == 404 and error_code(answer) in NOT_FOUND_CODES:
        return RefundStatus(
            out_refund_no, RefundState.NOT_FOUND, channel_state="RESOURCE_NOT_EXISTS"
        )
    if answer.status != 200:
        raise error_from_answer(answer, buyer_codes=REFUND_BUYER_CODES)
    return _checked(answer, out_refund_no, out_trade_no, "refund query")
