"""Hedged creates: when the chosen account is slow to answer, ask the next one as well.

A buyer-initiated payment (qr, web, h5, app, jsapi, checkout) whose create at the chosen
account has not answered within the hedge delay is sent, as the same order, to the next
account of the decision too; the first created answer wins and the other order is closed by
the re-query worker (`router.payments.failover`, `router.payments.abandoned`). A barcode is
never hedged: the buyer's code could be charged twice.

The delay follows the accounts' observed latency: the lowest p95 among the decision's
candidates (what a healthy account achieves now), times `delay_factor`, between
`min_delay_ms` and `max_delay_ms`. Hedges are capped by a budget, as Envoy's and gRPC's
retry budgets are: each create earns `budget` of a hedge, a hedge spends one, and at most
`burst` can be saved up; so over any long stretch at most `budget` of creates are hedged,
while a short burst of slow creates right after an account turns slow is hedged in full.
The budget is per router process (each process hedges at most that share of its own
creates, so the cluster does too).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

HEDGEABLE = frozenset({"qr", "web", "h5", "app", "jsapi", "checkout"})
"""The methods a hedge may be sent for: those whose order the buyer sees only if the create
succeeds (`router.payments.failover.BUYER_INITIATED`)."""


class HedgeSettings(BaseModel):
    """The routing file's `adaptive.hedge:` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    delay_factor: Annotated[float, Field(ge=1, le=20)] = 2.0
    """The hedge delay, in multiples of the fastest candidate's p95."""
    min_delay_ms: Annotated[int, Field(ge=10, le=60_000)] = 50
    max_delay_ms: Annotated[int, Field(ge=10, le=60_000)] = 1500
    """Also the delay while no candidate has a measured p95 yet."""
    budget: Annotated[float, Field(ge=0, le=0.5)] = 0.05
    """The share of creates that may be hedged over any long stretch."""
    burst: Annotated[float, Field(ge=1, le=1000)] = 10.0
    """Hedges that may be saved up for a burst of slow creates."""
    methods: frozenset[str] = HEDGEABLE

    @model_validator(mode="after")
    def _sane(self) -> HedgeSettings:
        if self.min_delay_ms > self.max_delay_ms:
            raise ValueError("min_delay_ms must not exceed max_delay_ms")
        unsafe = sorted(self.methods - HEDGEABLE)
        if unsafe:
            raise ValueError(
                f"methods: {', '.join(unsafe)} cannot be hedged (only buyer-initiated "
                f"methods: {', '.join(sorted(HEDGEABLE))})"
            )
        return self


def hedge_delay_ms(settings: HedgeSettings, p95s: Iterable[float | None]) -> float:
    """The delay after which a create is hedged, from the candidates' p95 latencies."""
    known = [p for p in p95s if p is not None]
    if not known:
        return float(settings.max_delay_ms)
    wanted = min(known) * settings.delay_factor
    return float(min(settings.max_delay_ms, max(settings.min_delay_ms, wanted)))


class HedgeBudget:
    """This process's hedging allowance (see the module's doc)."""

    def __init__(self) -> None:
        self._tokens: float | None = None
        """None: nothing spent yet, a full burst."""

    def earn(self, settings: HedgeSettings) -> None:
        """One create was routed with hedging possible."""
        self._tokens = min(settings.burst, self.left(settings) + settings.budget)

    def spend(self, settings: HedgeSettings) -> bool:
        """Take one hedge; False when the budget is spent."""
        tokens = self.left(settings)
        if tokens < 1:
            return False
        self._tokens = tokens - 1
        return True

    def left(self, settings: HedgeSettings) -> float:
        """Hedges that could be sent now."""
        return settings.burst if self._tokens is None else min(settings.burst, self._tokens)
