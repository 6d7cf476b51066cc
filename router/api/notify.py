"""Channel callbacks: `POST /v1/notify/{channel_account}`.

The channel's adapter verifies the callback with the channel's own scheme and decodes it; the
notification service (`router.payments.notifications`) then checks it against the payment or
refund it belongs to (same account, same amount and currency) and applies it through the
same atomic transition as everything else, so a duplicate or late callback changes nothing.
Anything that fails a check changes nothing, is counted in
`payrouter_channel_notifications_total{outcome=...}` and logged without secrets; the channel
gets its own "failed, retry" answer. The success acknowledgement is sent only after
the change is stored: a store that cannot be reached surfaces as `503 store_unavailable` (see
`router.api.middleware.request_context`), which every channel treats as "not received" and retries.
"""

from __future__ import annotations

import logging

from aiohttp import web

from channels.base import Acknowledgement, Channel, Notification
from channels.errors import NotificationRejected
from router.api.middleware import RUNTIME
from router.api.payments import PAYMENTS, REFUNDS
from router.errors import NotFound
from router.payments.notifications import NotificationRefused, NotificationService

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
        await _audit(request, account, body, exc.reason, None)
        return _refuse(request, channel, exc.reason, exc.message)
    service = NotificationService(request.app[PAYMENTS], request.app[REFUNDS])
    try:
        described = await service.apply(account, note)
    except NotificationRefused as exc:
        await _audit(request, account, body, exc.reason, note)
        return _refuse(request, channel, exc.reason, exc.detail)
    await _audit(request, account, body, "accepted", note)
    rt.metrics.notifications.labels(account, "accepted").inc()
    log.info(
        "notification accepted account=%s id=%s event=%s %s",
        account,
        note.notification_id,
        note.event_type,
        described,
    )
    return _answer(channel.acknowledgement(True))


UNRECORDED_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
"""Headers left out of the audit copy: a channel sends none, a stranger might."""


async def _audit(
    request: web.Request, account: str, body: bytes, outcome: str, note: Notification | None
) -> None:
    """Hand the callback as received, and what came of it, to the record's audit table
    (`channel_notifications`), before the channel is answered."""
    rt = request.app[RUNTIME]
    refund = note.refund if note is not None else None
    trade = note.trade if note is not None else None
    payment_id = refund.order_no if refund is not None else trade.order_no if trade else None
    headers = {
        name: value
        for name, value in request.headers.items()
        if name.lower() not in UNRECORDED_HEADERS
    }
    row = {
        "account": account,
        "received_ms": rt.clock.now_ms(),
        "headers": headers,
        "outcome": outcome,
        "payment_id": payment_id,
        "refund_id": refund.refund_no if refund is not None else None,
    }
    await rt.store.changes.notification(row, body)


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
