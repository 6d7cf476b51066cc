"""Trying a payment's candidate accounts in order, without ever letting a buyer pay twice.

For each candidate, within the create deadline:

- breaker closed: call it. Half-open: take one of the shared probe slots first (or skip it).
- created: done.
- the channel certainly did not act (unreachable, 429/503, or a refusal that is the channel's
  own fault): record a failure on its breaker and move on.
- the channel refused because of the request or the buyer: stop; the next channel would
  refuse too, and the merchant must see why.
- outcome unknown (timeout after sending, 5xx): never just move on. The order that exists (or
  might) is closed there first; only then move on. A barcode's channel is asked first: a paid
  order (the buyer already confirmed) ends the search, the payment succeeded there. A
  buyer-initiated method's (qr, web, h5, app, jsapi, checkout) is closed without asking: the
  buyer never saw that order, so nobody can have paid it. If the channel cannot be asked or
  the close fails: a buyer-initiated method moves on to the next account all the same; the
  account is written to the payment's `abandoned` list and the re-query worker closes the
  order there later. A barcode (the buyer's code may already be charged), or any payment with
  no account left to try, stops and stays `processing` for the re-query worker.
- every candidate failed: up to `breaker.last_resort` accounts whose breaker is open (never
  one an operator forced open) are tried, best first, without asking their breaker; a
  failure there is recorded as usual and changes nothing, a success is a created payment.

- hedged (`router.routing.hedge`): when the decision allows it, a buyer-initiated create the
  first account has not answered within the hedge delay also goes to the next account; the
  first created answer wins, the other account goes on the `abandoned` list (written before
  the hedge is sent, so a crash mid-race leaves it to the worker too) and its call, if still
  under way, finishes in the background to be recorded on its breaker
  (`router.payments.hedged`); then the order it created is closed and the account taken off
  the list (`router.payments.abandoned.close_loser`).

Every attempt is written to the payment's `routing.attempts`; before calling the next account
the payment is pointed at it, so a crash mid-call leaves the worker asking the right channel.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

from channels.base import Channel, CreateOrder, CreateResult, TradeState, TradeStatus
from channels.errors import ChannelError
from router.models import RoutingAttempt
from router.payments import hedged
from router.payments.abandoned import close_loser
from router.routing.decide import Decision
from router.routing.window import dimension
from router.runtime import Runtime
from router.store.payments import StoredPayment

BUYER_INITIATED = frozenset({"qr", "web", "h5", "app", "jsapi", "checkout"})
"""Methods whose order the buyer sees only if the create succeeds: a second order at another
account is harmless, so failover needs no proof that the first one does not exist."""
ABANDONED_CLOSE_AFTER_S = 5.0
"""How long after a failover the worker first looks at an abandoned order: most creates still
in flight at the channel have ended by then (one not found yet is looked at again)."""

log = logging.getLogger("payrouter.failover")
# A create that ends without a channel is logged as the payment's outcome, beside the
# payment service's other lines (operators follow payments under one logger name).
payments_log = logging.getLogger("payrouter.payments")


@dataclass
class Attempts:
    """The result of trying the candidates."""

    stored: StoredPayment
    """The payment as last pointed at an account."""
    attempts: list[RoutingAttempt] = field(default_factory=list)
    result: CreateResult | None = None
    error: ChannelError | None = None
    """The last failure, when nothing was created."""
    stop: Literal["created", "refused", "unknown", "paid", "exhausted"] = "exhausted"
    paid: TradeStatus | None = None
    success: tuple[str, int, str] | None = None
    """The successful call's (account, ms, probe id), for the caller to record on the
    breaker in the same round trip as the payment's new status."""
    abandoned: list[str] = field(default_factory=list)
    """Accounts whose order may exist and could not be closed (see the module's doc)."""


async def try_candidates(
    rt: Runtime,
    stored: StoredPayment,
    decision: Decision,
    order_for: Callable[[Channel], CreateOrder],
    *,
    status: str = "processing",
) -> Attempts:
    """Try `decision`'s candidates in order (see the module docstring). `status` is the one
    the payment keeps meanwhile: `processing` for an API create, `pending` for a checkout
    whose buyer's wallet has just become known (`router.payments.checkout`)."""
    out = Attempts(stored)
    deadline = rt.clock.monotonic() + rt.settings.create_deadline_s
    _, breaker = rt.breakers.settings()
    reserve = decision.reserve[: breaker.last_resort]
    tries = [(c, False) for c in decision.candidates] + [(c, True) for c in reserve]
    dim = dimension(stored.payment.method, stored.payment.amount)
    hedging = rt.config.config.adaptive.hedge
    may_hedge = (
        decision.hedge_delay_ms is not None
        and stored.payment.method in BUYER_INITIATED
        and len(decision.candidates) > 1
    )
    if may_hedge:
        rt.hedge_budget.earn(hedging)
    tried: set[str] = set()
    for index, (channel, last_resort) in enumerate(tries):
        account = channel.account
        if account in tried:
            continue
        if index > 0:
            if rt.clock.monotonic() >= deadline:
                break
            out.stored = await _point_at(rt, out, channel, status)
        probe = ""
        view = decision.health.get(account)
        # The last resort is tried without asking its breaker: it is open, and would refuse.
        if not last_resort and (view is None or not view.admits_without_asking):
            admission = await rt.breakers.admit(account)
            if not admission.admitted:
                rt.metrics.failovers.labels(account, "breaker_open").inc()
                continue
            probe = admission.probe_id
        tried.add(account)
        call = hedged.start(rt, channel, order_for(channel), probe)
        later: list[RoutingAttempt] = []
        if may_hedge and index == 0:
            call, later = await _hedge(rt, out, decision, call, order_for, status, tried)
        try:
            out.result = await call.task
        except ChannelError as exc:
            kind = hedged.kind(exc)
            out.error = exc
            out.attempts.append(
                RoutingAttempt(channel=account, outcome=kind, ms=call.ms, code=exc.code or None)
            )
            out.attempts += later
            blame = hedged.blame(exc)
            refused = kind == "unavailable"
            await rt.breakers.record(account, blame, call.ms, probe, dim, refused=refused)
            if blame == "neutral":
                out.stop = "refused"
                return out
            more = any(c.account not in tried for c, _ in tries[index + 1 :])
            if kind == "unknown" and not await _settle_unknown(rt, out, channel, more, status):
                return out
            if out.stop == "paid":
                return out
            rt.metrics.failovers.labels(account, kind).inc()
            continue
        out.success = (call.account, call.ms, call.probe)
        out.attempts.append(
            RoutingAttempt(
                channel=call.account, outcome="created", ms=call.ms, hedge=call.account != account
            )
        )
        out.attempts += later
        out.stop = "created"
        rt.metrics.routing_decisions.labels(decision.rule, call.account).inc()
        return out
    return out


async def _hedge(
    rt: Runtime,
    out: Attempts,
    decision: Decision,
    primary: hedged.Call,
    order_for: Callable[[Channel], CreateOrder],
    status: str,
    tried: set[str],
) -> tuple[hedged.Call, list[RoutingAttempt]]:
    """Wait for `primary` up to the hedge delay; then send the same order to the next
    account as well (`router.routing.hedge`). Returns the call to finish the attempt with
    (the winner, or the primary when neither created the order) and the attempts to show
    after it."""
    assert decision.hedge_delay_ms is not None
    settings = rt.config.config.adaptive.hedge
    delay_s = decision.hedge_delay_ms / 1000
    loop = asyncio.get_running_loop()
    began = loop.time()
    finished, _ = await asyncio.wait({primary.task}, timeout=delay_s)
    if finished:
        return primary, []
    # This process itself stalled (the timer fired late): the answer may be waiting to be
    # read. Give the primary that long again, up to the delay, before blaming its channel.
    late_s = loop.time() - began - delay_s
    if late_s > delay_s / 2:
        finished, _ = await asyncio.wait({primary.task}, timeout=min(late_s, delay_s))
        if finished:
            rt.metrics.hedges.labels(primary.account, "stalled").inc()
            return primary, []
    if rt.hedge_budget.left(settings) < 1:
        rt.metrics.hedges.labels(primary.account, "budget_spent").inc()
        return primary, []
    channel = hedged.target(decision, tried)
    if channel is None:
        rt.metrics.hedges.labels(primary.account, "no_account").inc()
        return primary, []
    rt.hedge_budget.spend(settings)
    tried.add(channel.account)
    # On the abandoned list before it is sent: should this process die mid-race, the worker
    # still closes the order there (not before the race could have ended).
    out.abandoned.append(channel.account)
    late_s = rt.settings.create_deadline_s + ABANDONED_CLOSE_AFTER_S
    await _write_abandoned(rt, out, status, late_s)
    second = hedged.start(rt, channel, order_for(channel), "")
    winner = await hedged.race(primary, second)
    dim = dimension(out.stored.payment.method, out.stored.payment.amount)
    if winner is None:
        rt.metrics.hedges.labels(primary.account, "failed").inc()
        await hedged.settle(rt, second, dim)
        return primary, [hedged.attempt(second, hedge=True)]
    loser = second if winner is primary else primary
    later: list[RoutingAttempt] = []
    if winner is second:
        rt.metrics.hedges.labels(primary.account, "won").inc()
        # A peer answered while this one is still under way: slow now, not when the
        # machine merely stalled (that would have held up the peer as well).
        rt.breakers.outraced(primary.account, primary.token)
        out.attempts.append(hedged.attempt(primary, hedge=False))
        out.abandoned = [a for a in out.abandoned if a != second.account] + [primary.account]
        out.stored = await _point_at(rt, out, second.channel, status)
    else:
        rt.metrics.hedges.labels(primary.account, "lost").inc()
        later.append(hedged.attempt(second, hedge=True))
    await _write_abandoned(rt, out, status, ABANDONED_CLOSE_AFTER_S)
    if loser.task.done():
        await hedged.settle(rt, loser, dim)
    # Beyond the request: the loser's outcome on its breaker once it ends, then its order
    # closed and its account off the abandoned list (nothing writes the list after this).
    rt.spawn(_after_loser(rt, out.stored, loser, dim), name=f"hedge-loser-{loser.account}")
    return winner, later


async def _after_loser(rt: Runtime, stored: StoredPayment, loser: hedged.Call, dim: str) -> None:
    if not loser.task.done():
        await hedged.settle(rt, loser, dim)
    await close_loser(rt, stored, loser)


async def _point_at(rt: Runtime, out: Attempts, channel: Channel, status: str) -> StoredPayment:
    p = out.stored.payment
    routing = p.routing.model_copy(update={"attempts": list(out.attempts)})
    fields = {
        "channel": channel.account,
        "wallet": channel.capabilities.wallet,
        "routing": routing.model_dump(mode="json"),
        # In the same write: the account the payment moves to is never on the list.
        "abandoned": list(out.abandoned),
    }
    await rt.store.payments.transition(out.stored, status, fields, require=status)
    updated = p.model_copy(
        update={
            "channel": channel.account,
            "wallet": channel.capabilities.wallet,
            "routing": routing,
        }
    )
    return replace(out.stored, payment=updated, abandoned=tuple(out.abandoned))


async def _settle_unknown(
    rt: Runtime, out: Attempts, channel: Channel, more: bool, status: str
) -> bool:
    """After an unknown outcome: True when it is safe to try the next account (`more`: there
    is one to try)."""
    order = out.stored.order_ref()
    account = channel.account
    try:
        if out.stored.payment.method in BUYER_INITIATED:
            # Nobody has seen this order, so nobody can have paid it: close it without asking
            # first (closing an order the channel does not know changes nothing there).
            await rt.call(account, "close", lambda: channel.close(order))
            return True
        trade = await rt.call(account, "query", lambda: channel.query(order))
        if trade.state is TradeState.SUCCEEDED:
            out.stop, out.paid = "paid", trade
            return True
        if trade.state in (TradeState.PENDING, TradeState.NOT_FOUND):
            # Even "not found" may be a create still in flight at the channel: close it so it
            # can never be paid, whichever way that request ends.
            await rt.call(account, "close", lambda: channel.close(order))
    except ChannelError as exc:
        if more and out.stored.payment.method in BUYER_INITIATED:
            log.warning(
                "payment %s: %s outcome unknown and cannot be settled now (%s); moving on, "
                "the re-query worker closes the order there",
                out.stored.payment.id,
                account,
                exc.message,
            )
            await _abandon(rt, out, account, status)
            return True
        log.warning(
            "payment %s: %s outcome unknown and cannot be settled now (%s); "
            "left processing for the re-query worker",
            out.stored.payment.id,
            account,
            exc.message,
        )
        out.stop = "unknown"
        return False
    return True


async def _abandon(rt: Runtime, out: Attempts, account: str, status: str) -> None:
    """Remember that `account` may hold an order for this payment, and have the worker close
    it: the list first, so that the worker's entry always finds it. `status`: the payment's
    while it is routed (`processing`; a checkout's `pending`)."""
    out.abandoned.append(account)
    await _write_abandoned(rt, out, status, ABANDONED_CLOSE_AFTER_S)
    rt.metrics.failovers.labels(account, "abandoned").inc()


async def _write_abandoned(rt: Runtime, out: Attempts, status: str, after_s: float) -> None:
    """Store `out.abandoned` on the payment and bring it to the worker in `after_s`."""
    stored = out.stored
    await rt.store.payments.transition(
        stored, status, {"abandoned": list(out.abandoned)}, require=status
    )
    out.stored = replace(stored, abandoned=tuple(out.abandoned))
    due = rt.clock.now_ms() + int(after_s * 1000)
    await rt.store.schedule.put_abandoned(stored.merchant_id, stored.payment.id, due)
