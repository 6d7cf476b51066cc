"""A channel's verified callback, checked against what it is about and applied.

A callback names a payment (and maybe a refund) by our ids; it is applied only if that payment
exists and was sent to the account the callback came in on, and a refund only if it is of the
payment the callback names. Anything else is `NotificationRefused` with the reason counted in
`payrouter_channel_notifications_total{outcome=...}`, and nothing changes.
"""

from __future__ import annotations

from channels.base import Notification, RefundStatus, TradeStatus
from router.domain_errors import TradeMismatch
from router.payments.refunds import RefundService
from router.payments.service import PaymentService
from router.store.payments import StoredPayment


class NotificationRefused(Exception):
    """The callback does not belong to what it names, or contradicts it: nothing applied."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class NotificationService:
    """Applies channel callbacks through the payment and refund services."""

    def __init__(self, payments: PaymentService, refunds: RefundService) -> None:
        self.payments = payments
        self.refunds = refunds

    async def apply(self, account: str, note: Notification) -> str:
        """Apply `note`, which came in on `account`. Returns a one-line description of what
        it did, for the log. Raises `NotificationRefused`."""
        try:
            if note.refund is not None:
                return await self._refund(account, note.refund)
            if note.trade is not None:
                return await self._trade(account, note.trade)
        except TradeMismatch as exc:
            raise NotificationRefused("amount_mismatch", exc.message) from None
        raise NotificationRefused("malformed", "neither a payment nor a refund")

    async def _owned(self, account: str, payment_id: str) -> StoredPayment:
        """The payment a callback is about, if it exists and was sent to this account."""
        store = self.payments.rt.store
        stored = await store.payments.find(payment_id)
        if stored is None:
            raise NotificationRefused("unknown_order", f"no payment {payment_id!r}")
        if stored.payment.channel != account:
            raise NotificationRefused(
                "wrong_account", f"payment {payment_id} was sent to {stored.payment.channel}"
            )
        return stored

    async def _trade(self, account: str, trade: TradeStatus) -> str:
        stored = await self._owned(account, trade.order_no)
        status = await self.payments.apply_trade(stored, trade, source="notification")
        return f"payment={trade.order_no} state={trade.channel_state} status={status}"

    async def _refund(self, account: str, refund: RefundStatus) -> str:
        store = self.payments.rt.store
        stored = await store.refunds.find(refund.refund_no)
        if stored is None:
            raise NotificationRefused("unknown_refund", f"no refund {refund.refund_no!r}")
        if refund.order_no is not None and refund.order_no != stored.refund.payment:
            raise NotificationRefused(
                "wrong_payment", f"refund {refund.refund_no} is not of {refund.order_no}"
            )
        await self._owned(account, stored.refund.payment)
        status = await self.refunds.apply(stored, refund, account=account, source="notification")
        return f"refund={refund.refund_no} state={refund.channel_state} status={status}"
