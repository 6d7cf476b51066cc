"""Channel callbacks: `POST /v1/notify/{channel_account}`.

The channel's adapter verifies the callback with the channel's own scheme and decodes it; the
router then checks it against the payment or refund it belongs to (same account, same amount
and currency) and applies it through the same atomic transition as everything else, so a
duplicate or late callback changes nothing. Anything that fails a check changes nothing, is
counted in `payrouter_channel_notifications_total{outcome=...}` and logged without secrets;
the channel gets its own "failed, retry" answer. The success acknowledgement is sent only after
the change is stored: a store that cannot be reached surfaces as `503 store_unavailable` (see
`router.api.middleware.request_context`), which every channel treats as "not received" and retries.
"""

from __future__ import annotations

import logging

from aiohttp import web

from channels.base import Acknowledgement, Channel, RefundStatus, TradeStatus
from channels.errors import NotificationRejected
from router.api.middleware import RUNTIME
from router.api.payments import PAYMENTS, REFUNDS
from router.errors import NotFound, TradeMismatch
from router.store.payments import StoredPayment

log = logging.getLogger("payrouter.notify")
MAX_NOTIFICATION_BODY = 64 * 1024


def _answer(ack: Acknowledgement) -> web.Response:
    return web.Response(
        status=ack.status, body=ack.body, content_type=ack.content_type, headers=ack.headers
    )


async def channel_notification(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    account = request.match_info["account"]
    found = rt.accounts.get(account)
    if found is None:
        raise NotFound("channel account", account, param="channel_account")
    channel = found.channel
    body = await request.read()
    try:
        note = channel.parse_notification(request.headers, body)
    except NotificationRejected as exc:
        return _refuse(request, channel, exc.reason, exc.message)
    try:
        if note.refund is not None:
            described = await _refund(request, account, note.refund)
        elif note.trade is not None:
            described = await _trade(request, account, note.trade)
        else:
            raise Refusal("malformed", "neither a payment nor a refund")
    except Refusal as exc:
        return _refuse(request, channel, exc.reason, exc.detail)
    except TradeMismatch as exc:
        return _refuse(request, channel, "amount_mismatch", exc.message)
    rt.metrics.notifications.labels(account, "accepted").inc()
    log.info(
        "notification accepted account=%s id=%s event=%s %s",
        account,
        note.notification_id,
        note.event_type,
        described,
    )
    return _answer(channel.acknowledgement(True))


class Refusal(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


async def _owned(request: web.Request, account: str, payment_id: str) -> StoredPayment:
    """The payment a callback is about, if it exists and was sent to this account."""
    store = request.app[RUNTIME].store
    mch = await store.payments.owner(payment_id)
    stored = None if mch is None else await store.payments.get(mch, payment_id)
    if stored is None:
        raise Refusal("unknown_order", f"no payment {payment_id!r}")
    if stored.payment.channel != account:
        raise Refusal("wrong_account", f"payment {payment_id} was sent to {stored.payment.channel}")
    return stored


async def _trade(request: web.Request, account: str, trade: TradeStatus) -> str:
    stored = await _owned(request, account, trade.order_no)
    status = await request.app[PAYMENTS].apply_trade(stored, trade, source="notification")
    return f"payment={trade.order_no} state={trade.channel_state} status={status}"


async def _refund(request: web.Request, account: str, refund: RefundStatus) -> str:
    store = request.app[RUNTIME].store
    mch = await store.payments.owner(refund.refund_no)
    stored = None if mch is None else await store.refunds.get(mch, refund.refund_no)
    if stored is None:
        raise Refusal("unknown_refund", f"no refund {refund.refund_no!r}")
    if refund.order_no is not None and refund.order_no != stored.refund.payment:
        raise Refusal("wrong_payment", f"refund {refund.refund_no} is not of {refund.order_no}")
    await _owned(request, account, stored.refund.payment)
    status = await request.app[REFUNDS].apply(
        stored, refund, account=account, source="notification"
    )
    return f"refund={refund.refund_no} state={refund.channel_state} status={status}"


def _refuse(request: web.Request, channel: Channel, reason: str, detail: str) -> web.Response:
    rt = request.app[RUNTIME]
    rt.metrics.notifications.labels(channel.account, reason).inc()
    peer = request.remote or "?"
    log.warning(
        "notification refused account=%s reason=%s peer=%s: %s",
        channel.account,
        reason,
        peer,
        detail,
    )
    return _answer(channel.acknowledgement(False))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/notify/{account}", channel_notification)
