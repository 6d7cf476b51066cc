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

The loser of a hedged create (`router.payments.failover`) is different: its create has ended
by the time it is settled, so the router knows what it left. `close_loser` closes an order
it created at once (just created, its buyer never saw it: nothing to ask first), and takes
the account off the list when the create certainly failed or the close succeeded; only an
unknown outcome, or a close that fails, is left to the worker's query and close. A hedge thus
costs its create and one close, not a create, a query and a close.
"""

from __future__ import annotations

import logging

from channels.base import TradeState
from channels.errors import ChannelError
from router.domain_errors import ChannelProblem
from router.models import FINAL_STATUSES
from router.payments.hedged import Call, kind
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


async def close_loser(rt: Runtime, stored: StoredPayment, call: Call) -> None:
    """`call`, a hedge's loser, has ended: close the order it created and take its account
    off the payment's abandoned list (see the module's doc)."""
    if call.task.cancelled():
        return
    exc = call.task.exception()
    if exc is None:
        order = stored.order_ref()
        try:
            await rt.call(call.account, "close", lambda: call.channel.close(order))
        except (ChannelError, ChannelProblem) as problem:
            log.info(
                "hedge loser of %s at %s not closed yet (%s): the worker closes it",
                stored.payment.id,
                call.account,
                problem.message,
            )
            return
    elif not isinstance(exc, ChannelError) or kind(exc) == "unknown":
        return
    await _drop(rt, stored.payment.id, call.account)


async def _drop(rt: Runtime, pay_id: str, account: str) -> None:
    """Take `account` off the payment's abandoned list, whatever its status (a final payment
    is left as it is: the worker finds the order closed, or never created)."""
    for _ in range(3):
        found = await rt.store.payments.find(pay_id)
        if found is None or account not in found.abandoned:
            return
        status = found.payment.status
        if status in FINAL_STATUSES:
            return
        left = [a for a in found.abandoned if a != account]
        applied, _ = await rt.store.payments.transition(
            found, status, {"abandoned": left}, require=status
        )
        if applied:
            return
