"""UnionPay backend notifications ("后台通知"): read and verify. Pure functions, no I/O.

UnionPay posts a URL-encoded form to the transaction's `backUrl`, signed like an answer
(`signPubKeyCert` + `signature`). Success is `respCode` 00 or A6; failed payments are not
notified. The merchant acknowledges with HTTP 200 (UnionPay also takes 302) within 10 s;
otherwise UnionPay posts again, five times in all, after 1, 2, 4 and 5 minutes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from channels.base import Notification, RefundStatus, TradeStatus
from channels.errors import NotificationRejected
from channels.unionpay.crypto import ChainVerifier, VerificationError, verify_signed
from channels.unionpay.protocol import codes, wire

RETRY_SCHEDULE: tuple[float, ...] = (60, 120, 240, 300)
"""Seconds between the five delivery attempts of one notification."""
ACCEPTED_STATUSES = frozenset({200, 302})
EVENT_TYPES: Mapping[str, str] = {"01": "consume", "04": "refund"}
"""`txnType` → the event names used in `Notification.event_type`."""


def _required(fields: Mapping[str, str], name: str) -> str:
    value = fields.get(name, "")
    if not value:
        raise NotificationRejected("malformed", f"the notification has no {name}")
    return value


def parse_notification(
    body: bytes, verifier: ChainVerifier, mer_id: str, now: datetime
) -> Notification:
    """Verify and read a notification for merchant `mer_id`. Raises `NotificationRejected`."""
    try:
        fields = wire.decode_form(body)
    except wire.WireError as exc:
        raise NotificationRejected("malformed", f"malformed notification: {exc}") from None
    try:
        verify_signed(fields, verifier, now)
    except VerificationError as exc:
        raise NotificationRejected(exc.reason, exc.message) from None
    if fields.get("merId") != mer_id:
        raise NotificationRejected("account", "the notification is for another merchant")
    txn_type = _required(fields, "txnType")
    event_type = EVENT_TYPES.get(txn_type)
    if event_type is None:
        raise NotificationRejected("unsupported", f"no notification is expected for {txn_type}")
    code = _required(fields, "respCode")
    query_id = _required(fields, "queryId")
    try:
        order_no = wire.from_order_id(_required(fields, "orderId"))
        amount = wire.parse_amount(_required(fields, "txnAmt"))
    except wire.WireError as exc:
        raise NotificationRejected("malformed", f"malformed notification: {exc}") from None
    if txn_type == "04":
        refund = RefundStatus(
            refund_no=order_no,
            state=codes.map_refund_state(code),
            channel_state=code,
            channel_refund_no=query_id,
            amount=amount,
        )
        return Notification(notification_id=query_id, event_type=event_type, refund=refund)
    trade = TradeStatus(
        order_no=order_no,
        state=codes.map_trade_state(code),
        channel_state=code,
        channel_trade_no=query_id,
        amount=amount,
        currency=wire.currency_of(fields.get("currencyCode", "156")),
        account_id=mer_id,
    )
    return Notification(notification_id=query_id, event_type=event_type, trade=trade)
