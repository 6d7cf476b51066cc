"""A create that found no channel: recorded on the payment, and the merchant's error for it.

`router.payments.failover.try_candidates` tried every candidate; what it ended with decides
the answer. An unknown outcome that could not be settled leaves the payment `processing` for
the re-query worker (502 `channel_outcome_unknown`); a refusal because of the request or the
buyer is `402 channel_declined`; anything else fails the payment (503
`channel_unavailable`, retry is safe), saying what became of any order a channel may have
opened.
"""

from __future__ import annotations

import logging
from typing import NoReturn

from channels.errors import ChannelOutcomeUnknown, ChannelRejected
from router.domain_errors import ChannelDeclined, ChannelDown, OutcomeUnknown
from router.payments.failover import Attempts
from router.payments.moves import finish_payment
from router.runtime import Runtime

# A create that ends without a channel is logged as the payment's outcome, beside the
# payment service's other lines (operators follow payments under one logger name).
payments_log = logging.getLogger("payrouter.payments")


async def fail_create(rt: Runtime, tried: Attempts) -> NoReturn:
    """Record a create that found no channel and raise the merchant's error for it."""
    stored, exc = tried.stored, tried.error
    p = stored.payment
    routing = p.routing.model_copy(update={"attempts": tried.attempts}).model_dump(mode="json")
    tried_names = ", ".join(a.channel for a in tried.attempts) or "none admitted"
    payments_log.warning(
        "payment %s not created (%s); attempts: %s; last: %s",
        p.id,
        tried.stop,
        tried_names,
        exc.message if exc else "-",
    )
    if tried.stop == "unknown":
        # The order may exist at the channel: leave it processing for the worker, which
        # queries and closes it there before anything else can happen to this payment.
        await rt.store.payments.transition(
            stored, "processing", {"routing": routing}, require="processing"
        )
        raise OutcomeUnknown(
            "channel_outcome_unknown",
            f"{p.channel} did not answer in time and cannot be asked now; the payment "
            "stays processing until the router has confirmed with the channel",
            payment_id=p.id,
        )
    refused = tried.stop == "refused" and isinstance(exc, ChannelRejected)
    failure = {
        "code": (exc.code if exc and exc.code else "channel_unavailable"),
        "message": exc.message if exc else "every candidate account's breaker is open",
    }
    # An unknown outcome that ends here was settled: the order that may exist (a timeout,
    # UnionPay's 03/04/05) was closed at the channel, so it can never be paid.
    closed = sorted(
        {a.channel for a in tried.attempts if a.outcome == "unknown"} - set(tried.abandoned)
    )
    if isinstance(exc, ChannelOutcomeUnknown):
        last = tried.attempts[-1].channel if tried.attempts else None
        where = (
            "it cannot be paid and is closed there shortly"
            if last in tried.abandoned
            else "it was closed there"
        )
        failure = {
            "code": "channel_outcome_unknown",
            "message": f"the channel did not confirm the order ({exc.code or exc.message});"
            f" {where}",
        }
    fields = {"routing": routing, "failure": failure}
    await finish_payment(
        rt.store, rt.metrics, stored, "failed", fields, source="create", require="processing"
    )
    if refused:
        assert exc is not None
        raise ChannelDeclined(
            "channel_declined",
            f"{p.channel} refused the payment: {exc.code} {exc.message}",
            payment_id=p.id,
        )
    outcome = (
        f"any order {', '.join(closed)} may have opened was closed there"
        if closed
        else "nothing was created"
    )
    if tried.abandoned:
        outcome += (
            f"; any order {', '.join(tried.abandoned)} may have opened cannot be paid and is "
            "closed there shortly"
        )
    raise ChannelDown(
        "channel_unavailable",
        f"no channel could take the payment (tried: {tried_names}); {outcome}, retry is safe",
        payment_id=p.id,
    )
