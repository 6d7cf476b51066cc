"""Channel callbacks: `POST /v1/notify/{channel_account}`.

The channel's adapter verifies the callback with the channel's own scheme and decodes it; the
router then checks it against the payment it belongs to (same account, same amount and
currency) and applies it through the same atomic transition as everything else, so a
duplicate or late callback changes nothing. Anything that fails a check changes nothing, is
counted in `payrouter_channel_notifications_total{outcome=...}` and logged without secrets;
the channel gets its own "failed, retry" answer.
"""

from __future__ import annotations

import logging

from aiohttp import web

from channels.base import Acknowledgement, Channel
from channels.errors import NotificationRejected
from router.api import PAYMENTS
from router.errors import NotFound
from router.http import RUNTIME
from router.payments import TradeMismatch

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
    trade = note.trade
    mch = await rt.store.payments.owner(trade.order_no)
    stored = None if mch is None else await rt.store.payments.get(mch, trade.order_no)
    if stored is None:
        return _refuse(request, channel, "unknown_order", f"no payment {trade.order_no!r}")
    if stored.payment.channel != account:
        return _refuse(
            request,
            channel,
            "wrong_account",
            f"payment {trade.order_no} was sent to {stored.payment.channel}",
        )
    try:
        status = await request.app[PAYMENTS].apply_trade(stored, trade, source="notification")
    except TradeMismatch as exc:
        return _refuse(request, channel, "amount_mismatch", str(exc))
    rt.metrics.notifications.labels(account, "accepted").inc()
    log.info(
        "notification accepted account=%s id=%s payment=%s state=%s status=%s",
        account,
        note.notification_id,
        trade.order_no,
        trade.channel_state,
        status,
    )
    return _answer(channel.acknowledgement(True))


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
