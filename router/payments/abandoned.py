"""Orders a failover left behind: closed at their channel by the re-query worker.

A buyer-initiated payment (`router.payments.failover.BUYER_INITIATED`) whose create at one
account had an unknown outcome, and whose channel could not be asked, moves on to the next
account without proof that no order exists at the first. The buyer never saw that order, so
nobody can pay it; it is closed all the same, so that it cannot linger at the channel. The
account is on the payment's `abandoned` list and a schedule entry of its own
(`abandoned/mch/pay_id`) brings the payment to the worker, whatever became of the payment
itself. For each account: ask the channel; an order waiting for the buyer is closed; none, or
one already closed or failed, needs nothing; a paid one (which no buyer could have reached)
is logged for review. An order that is not found while a create could still be on its way
there is looked at again later.
"""

from __future__ import annotations

import logging

from channels.base import TradeState
from channels.errors import ChannelError
from router.domain_errors import ChannelProblem
from router.runtime import Runtime
from router.store.payments import StoredPayment

log = logging.getLogger("payrouter.worker")
RETRY_S = 30.0
"""When the worker looks again at an abandoned order it could not settle."""


async def close_abandoned(rt: Runtime, stored: StoredPayment) -> list[str]:
    """Close the payment's abandoned orders; returns the accounts still to settle."""
    left: list[str] = []
    for account in stored.abandoned:
        try:
            if not await _close_one(rt, stored, account):
                left.append(account)
        except (ChannelError, ChannelProblem) as exc:
            log.warning(
                "abandoned order of %s at %s not closed yet: %s",
                stored.payment.id,
                account,
                exc.message,
            )
            left.append(account)
    return left


async def _close_one(rt: Runtime, stored: StoredPayment, account: str) -> bool:
    """True when nothing is left to do at `account`."""
    channel = rt.channel(account)
    order = stored.order_ref()
    trade = await rt.call(account, "query", lambda: channel.query(order))
    if trade.state is TradeState.PENDING:
        await rt.call(account, "close", lambda: channel.close(order))
        rt.metrics.worker_runs.labels("abandoned_closed").inc()
        return True
    if trade.state is TradeState.SUCCEEDED:
        log.error(
            "payment %s: the order abandoned at %s was paid (%s); needs review",
            stored.payment.id,
            account,
            trade.channel_trade_no,
        )
        return True
    if trade.state is TradeState.NOT_FOUND:
        # A create still on its way there would open the order after this look.
        found = rt.config.config.accounts.get(account)
        timeout_ms = (found.timeouts.total if found is not None else 10.0) * 1000
        return rt.clock.now_ms() - stored.created_ms > timeout_ms * 2
    return True
