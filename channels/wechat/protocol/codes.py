"""WeChat Pay's states and error codes and what each means for the router. Pure, no I/O."""

from __future__ import annotations

from collections.abc import Mapping

from channels.base import RefundState, TradeState
from channels.errors import (
    ChannelError,
    ChannelOutcomeUnknown,
    ChannelRejected,
    ChannelUnavailable,
    Fault,
)
from channels.http import HttpAnswer
from channels.wechat.protocol.wire import decode_object

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

NOT_FOUND_CODES = frozenset({"ORDER_NOT_EXIST", "ORDERNOTEXIST", "RESOURCE_NOT_EXISTS"})
BUYER_CODES = frozenset(
    {"NOT_ENOUGH", "NOTENOUGH", "ACCOUNT_ERROR", "ACCOUNTERROR", "AUTH_CODE_INVALID"}
)
"""Payment refusals caused by the buyer (their balance, account or payment code)."""


def map_trade_state(trade_state: str) -> TradeState:
    """WeChat `trade_state` → `TradeState`. Raises `ValueError` for an unknown word."""
    try:
        return TRADE_STATES[trade_state]
    except KeyError:
        raise ValueError(f"unknown trade_state {trade_state!r}") from None


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


REFUND_STATES: Mapping[str, RefundState] = {
    "SUCCESS": RefundState.SUCCEEDED,
    "PROCESSING": RefundState.PENDING,
    "CLOSED": RefundState.FAILED,
    "ABNORMAL": RefundState.FAILED,
}

REFUND_BUYER_CODES = frozenset({"USER_ACCOUNT_ABNORMAL"})
"""Refusals caused by the buyer's account. `NOT_ENOUGH` on a refund is the merchant's balance:
a refusal of our request, unlike `NOT_ENOUGH` on a payment."""


def map_refund_state(status: str) -> RefundState:
    """WeChat refund `status` → `RefundState`. Raises `ValueError` for an unknown word."""
    try:
        return REFUND_STATES[status]
    except KeyError:
        raise ValueError(f"unknown refund status {status!r}") from None
