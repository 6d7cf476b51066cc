"""One create to one account, run as a task, so that a slow one can be raced (hedged).

`start` sends a create and counts it in flight (`Breakers.call_started`) until it ends,
whoever waits for it. `race` waits for the first of two to create the order. A loser still
under way is left to finish in the background (`router.payments.failover`): its outcome and
latency are recorded on its account's breaker like any call's, so a slow account is learned
from the very calls a hedge saved the buyer from waiting on.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

from channels.base import Channel, CreateOrder, CreateResult
from channels.errors import ChannelError, ChannelOutcomeUnknown, ChannelRejected
from router.models import RoutingAttempt
from router.routing.decide import Decision
from router.routing.health import Outcome
from router.runtime import Runtime


@dataclass
class Call:
    """A create under way (or ended) at one account."""

    channel: Channel
    probe: str
    started: float
    task: asyncio.Task[CreateResult]
    token: int
    """Its `Breakers.call_started` token."""
    ended: float | None = field(default=None)

    @property
    def account(self) -> str:
        return self.channel.account

    @property
    def ms(self) -> int:
        """How long it took, or has taken so far."""
        until = self.ended if self.ended is not None else time.perf_counter()
        return int((until - self.started) * 1000)

    @property
    def created(self) -> bool:
        """Ended with an order created."""
        return self.task.done() and not self.task.cancelled() and self.task.exception() is None


def start(rt: Runtime, channel: Channel, order: CreateOrder, probe: str) -> Call:
    """Send `order` to `channel`'s account."""
    account = channel.account
    token = rt.breakers.call_started(account)

    async def create() -> CreateResult:
        try:
            return await rt.call(account, "create", partial(channel.create, order))
        finally:
            rt.breakers.call_ended(account, token)

    # Latency is measured, not decided on: perf_counter, not the clock.
    call = Call(channel, probe, time.perf_counter(), asyncio.create_task(create()), token)

    def done(_: object) -> None:
        call.ended = time.perf_counter()

    call.task.add_done_callback(done)
    return call


async def race(first: Call, second: Call) -> Call | None:
    """Wait until one of the two has created the order (that one is returned, the first on a
    tie) or both have failed (None)."""
    pending: set[asyncio.Task[CreateResult]] = {first.task, second.task}
    while pending:
        _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for call in (first, second):
            if call.created:
                return call
    return None


def kind(exc: ChannelError) -> Literal["rejected", "unknown", "unavailable"]:
    """The attempt's outcome for a failed create."""
    if isinstance(exc, ChannelRejected):
        return "rejected"
    if isinstance(exc, ChannelOutcomeUnknown):
        return "unknown"
    return "unavailable"


def attempt(call: Call, hedge: bool) -> RoutingAttempt:
    """The attempt a raced create shows: `abandoned` while it is still under way."""
    exc = None if not call.task.done() or call.created else call.task.exception()
    if not isinstance(exc, ChannelError):
        return RoutingAttempt(channel=call.account, outcome="abandoned", ms=call.ms, hedge=hedge)
    return RoutingAttempt(
        channel=call.account, outcome=kind(exc), ms=call.ms, code=exc.code or None, hedge=hedge
    )


def target(decision: Decision, tried: set[str]) -> Channel | None:
    """The next candidate a hedge may go to: one whose breaker is closed and that the strategy
    did not set aside as an outlier. A hedge is for speed: a half-open account's probe (and a
    failure that would keep it open longer) is not spent on one."""
    for channel in decision.candidates:
        view = decision.health.get(channel.account)
        role = decision.terms.get(channel.account, {}).get("role")
        if channel.account in tried or view is None or role == "outlier":
            continue
        if view.admits_without_asking:
            return channel
    return None


def blame(exc: ChannelError) -> Outcome:
    """What a failed create says about its account: nothing when the request or the buyer
    was at fault."""
    if isinstance(exc, ChannelRejected) and exc.fault != "channel":
        return "neutral"
    return "fail"


async def settle(rt: Runtime, call: Call, dim: str) -> None:
    """Record `call`'s outcome on its account's breaker once it has ended."""
    try:
        await call.task
    except ChannelError as exc:
        refused = kind(exc) == "unavailable"
        await rt.breakers.record(
            call.account, blame(exc), call.ms, call.probe, dim, refused=refused
        )
        return
    await rt.breakers.record(call.account, "ok", call.ms, call.probe, dim)
