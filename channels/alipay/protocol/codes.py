"""Alipay's trade states and codes and what each means for the router. Pure, no I/O."""

from __future__ import annotations

from collections.abc import Mapping

from channels.alipay.protocol.wire import Reply
from channels.base import RefundState, TradeState
from channels.errors import ChannelError, ChannelOutcomeUnknown, ChannelRejected, Fault

TRADE_STATES: Mapping[str, TradeState] = {
    "WAIT_BUYER_PAY": TradeState.PENDING,
    "TRADE_SUCCESS": TradeState.SUCCEEDED,
    "TRADE_FINISHED": TradeState.SUCCEEDED,
    "TRADE_CLOSED": TradeState.CLOSED,
}

REFUND_STATES: Mapping[str, RefundState] = {"REFUND_SUCCESS": RefundState.SUCCEEDED}
"""A refund query's `refund_status`; without one the refund was not received (`NOT_FOUND`)."""

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


def map_refund_state(refund_status: str) -> RefundState:
    """`refund_status` → `RefundState`. Raises `ValueError` for an unknown word."""
    try:
        return REFUND_STATES[refund_status]
    except KeyError:
        raise ValueError(f"unknown refund_status {refund_status!r}") from None


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
