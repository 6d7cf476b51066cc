"""Alipay asynchronous notifications (`notify_type=trade_status_sync`). No I/O.

Alipay POSTs a UTF-8 form to the order's `notify_url` (`notify_id`, `app_id`, `trade_no`,
`out_trade_no`, `trade_status`, `total_amount`, `gmt_payment`, `sign_type`, `sign`, ...),
signed over every field but `sign` and `sign_type`. A refund produces the same kind of
notification with `out_biz_no` (the refund's `out_request_no`), `refund_fee` (all refunded so
far) and `gmt_refund`; a full refund closes the trade (`TRADE_CLOSED`). The merchant answers
the exact text `success`, or Alipay posts again on its schedule.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl

from cryptography.hazmat.primitives.asymmetric import rsa

from channels.alipay.crypto import VerificationError, verify_notification
from channels.alipay.protocol.answers import parse_trade
from channels.alipay.protocol.wire import parse_time
from channels.base import Notification, RefundState, RefundStatus

NOTIFY_TYPE = "trade_status_sync"
ACK_ACCEPTED = b"success"
ACK_REFUSED = b"fail"


def parse_form(body: bytes) -> dict[str, str]:
    """A UTF-8 form body as a dict. Raises `VerificationError("malformed")`."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise VerificationError("malformed", "the notification is not a UTF-8 form") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise VerificationError("malformed", f"the field {name!r} appears twice")
        fields[name] = value
    return fields


def decode_notification(body: bytes, alipay_key: rsa.RSAPublicKey, app_id: str) -> Notification:
    """Verify and read a notification for the app `app_id`. Raises `VerificationError`."""
    fields = parse_form(body)
    verify_notification(alipay_key, fields)
    return read_fields(fields, app_id)


def read_fields(fields: Mapping[str, str], app_id: str) -> Notification:
    """A verified notification's fields as a `Notification`. Raises `VerificationError`."""
    if fields.get("app_id") != app_id:
        raise VerificationError("account", "the notification is for another app_id")
    notify_type = fields.get("notify_type", "")
    if notify_type != NOTIFY_TYPE:
        raise VerificationError("malformed", f"unsupported notify_type {notify_type!r}")
    notify_id = fields.get("notify_id")
    if not notify_id:
        raise VerificationError("malformed", "the notification has no notify_id")
    try:
        trade = parse_trade(fields, account_id=app_id)
        refund = _refund(fields)
    except ValueError as exc:
        raise VerificationError("malformed", f"unreadable notification: {exc}") from None
    return Notification(notify_id, notify_type, trade=trade, refund=refund)


def _refund(fields: Mapping[str, str]) -> RefundStatus | None:
    refund_no = fields.get("out_biz_no")
    refunded = fields.get("gmt_refund")
    if not refund_no or not refunded:
        return None
    return RefundStatus(
        refund_no=refund_no,
        state=RefundState.SUCCEEDED,
        channel_state="REFUND_SUCCESS",
        order_no=fields.get("out_trade_no"),
        channel_refund_no=None,
        amount=None,
        refunded_at=parse_time(refunded),
    )
