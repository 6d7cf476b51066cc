"""Choosing the channel accounts for a payment, and in which order to try them.

1. A merchant-pinned `channel` is the only candidate (rule `pinned`).
2. Otherwise the first rule in the routing file whose `match` fits names the accounts and the
   strategy; no rule fits: every account, in file order, with the defaults' strategy (rule
   `default`).
3. Accounts that cannot take the payment (wallet, method, currency, sandbox or live) drop out,
   with the field at fault named if none is left.
4. One Redis round trip reads every remaining account's breaker and health; the strategy
   orders them (see `router.routing.rules`); accounts whose breaker is open drop out.

`payrouter routes explain` and `/admin/routing/explain` show this same `Decision`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from channels.base import Channel, Method, Wallet
from router.domain_errors import ChannelDown, InvalidField
from router.routing.adaptive import rank, rng_for
from router.routing.config import RoutingConfig
from router.routing.health import AccountHealth, Breakers
from router.routing.hedge import hedge_delay_ms
from router.routing.rules import RouteRequest, Strategy, matches, order
from router.routing.window import dimension


@dataclass(frozen=True)
class Candidate:
    channel: Channel
    livemode: bool


@dataclass(frozen=True)
class Considered:
    """One account the decision looked at, and why it was left out (None: it was kept)."""

    account: str
    excluded: str | None = None
    health: AccountHealth | None = None


@dataclass(frozen=True)
class Decision:
    rule: str
    strategy: Strategy
    candidates: list[Channel]
    """To try, in order."""
    health: dict[str, AccountHealth] = field(default_factory=dict)
    considered: list[Considered] = field(default_factory=list)
    reserve: list[Channel] = field(default_factory=list)
    """Accounts whose breaker is open (not forced), in the strategy's order: the last resort
    when every candidate failed (`breaker.last_resort`)."""
    terms: dict[str, dict[str, object]] = field(default_factory=dict)
    """Per account, the strategy's score terms (`adaptive` only), for `routes explain`."""
    hedge_delay_ms: float | None = None
    """After how long a create at the first candidate is also sent to the next one
    (`router.routing.hedge`); None: this payment is not hedged."""

    @property
    def first(self) -> Channel:
        """The account tried first: the best candidate, else (every breaker open) the best
        last resort. `decide` never returns a decision with neither."""
        return (self.candidates or self.reserve)[0]

    def explain(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "strategy": self.strategy,
            "pick": self.candidates[0].account if self.candidates else None,
            "order": [c.account for c in self.candidates],
            "last_resort": [c.account for c in self.reserve],
            "hedge": (
                {"delay_ms": round(self.hedge_delay_ms), "to": self.candidates[1].account}
                if self.hedge_delay_ms is not None and len(self.candidates) > 1
                else None
            ),
            "considered": [
                {
                    "account": c.account,
                    "excluded": c.excluded,
                    "breaker": c.health.state if c.health else None,
                    "score": c.health.score if c.health else None,
                }
                | ({"terms": self.terms[c.account]} if c.account in self.terms else {})
                for c in self.considered
            ],
        }


def _capable_or_why(
    candidate: Candidate, method: Method, currency: str, wallet: Wallet | None, livemode: bool
) -> str | None:
    caps = candidate.channel.capabilities
    if candidate.livemode != livemode:
        return "mode"
    if wallet is not None and caps.wallet != wallet:
        return "wallet"
    if method not in caps.methods:
        return "method"
    if currency not in caps.currencies:
        return "currency"
    return None


_STEPS = ("not_configured", "mode", "wallet", "method", "currency")
_REFUSALS = {
    # reason: (code when pinned, code otherwise, param when pinned, param otherwise)
    "not_configured": ("no_channel_available", "no_channel_available", "channel", None),
    "mode": ("channel_mode_mismatch", "no_channel_available", "channel", None),
    "wallet": ("wallet_mismatch", "no_channel_available", "wallet", "wallet"),
    "method": ("method_unsupported", "method_unsupported", "method", "method"),
    "currency": ("currency_unsupported", "currency_unsupported", "currency", "currency"),
}


def _refuse(
    reasons: Sequence[str], req: RouteRequest, rule: str, pinned: str | None, mode: str
) -> InvalidField:
    """Each account dropped out at its first failing check; the field at fault is the last
    check that emptied the list."""
    last = max(reasons, key=_STEPS.index)
    pinned_code, code, pinned_param, param = _REFUSALS[last]
    where = f"channel account {pinned!r}" if pinned else f"rule {rule!r}"
    detail = {
        "not_configured": "names no configured account",
        "mode": f"has no {mode} account",
        "wallet": f"has no account for wallet {req.wallet!r}",
        "method": f"has no account that takes method {req.method!r}"
        + (f" for wallet {req.wallet!r}" if req.wallet else ""),
        "currency": f"has no account that takes {req.currency} for method {req.method!r}",
    }[last]
    if pinned:
        return InvalidField(pinned_code, f"{where} {detail}", param=pinned_param)
    return InvalidField(code, f"{where} {detail}", param=param)


async def decide(
    config: RoutingConfig,
    accounts: Mapping[str, Candidate],
    breakers: Breakers,
    req: RouteRequest,
    *,
    pinned: str | None,
    livemode: bool,
) -> Decision:
    """The accounts to try for `req`, in order. Raises `InvalidField` naming the field at
    fault, or `ChannelDown` when every capable account's breaker is open."""
    mode = "live" if livemode else "sandbox"
    strategy: Strategy
    if pinned is not None:
        if pinned not in accounts:
            raise InvalidField("unknown_channel", f"No channel account {pinned!r}", param="channel")
        rule, strategy, names = "pinned", "priority", [pinned]
        weights, exploration = None, 0.0
    else:
        chosen = next((r for r in config.rules if matches(r.match, req)), None)
        if chosen is not None:
            rule, strategy, names = chosen.name, chosen.strategy, list(chosen.accounts)
            weights, exploration = chosen.weights, chosen.exploration
        else:
            rule, strategy, names = "default", config.defaults.strategy, list(accounts)
            weights, exploration = None, config.defaults.exploration
    considered: list[Considered] = []
    capable: list[str] = []
    for name in names:
        found = accounts.get(name)
        why = (
            "not_configured"
            if found is None
            else _capable_or_why(found, req.method, req.currency, req.wallet, livemode)
        )
        if why is None:
            capable.append(name)
        else:
            considered.append(Considered(name, why))
    if not capable:
        raise _refuse([c.excluded or "" for c in considered], req, rule, pinned, mode)
    health = await breakers.snapshot(capable)
    terms: dict[str, dict[str, object]] = {}
    hedge_ms: float | None = None
    if strategy == "adaptive":
        window, _ = breakers.settings()
        hedging = config.adaptive.hedge
        ordered, scored = rank(
            capable,
            health,
            settings=config.adaptive,
            slo_ms=window.latency_slo_ms,
            bucket_ms=window.window_s * 1000 // window.buckets,
            fees=config.fees,
            dim=dimension(req.method, req.amount),
            exploration=exploration,
            rng=rng_for(req.payment_id),
            slow_in_flight={
                name: breakers.slow_in_flight(name, window.latency_slo_ms) for name in capable
            },
        )
        if pinned is None and hedging.enabled and req.method in hedging.methods:
            usable = [t.p95_ms for t in scored.values() if t.role not in ("outlier", "open")]
            hedge_ms = hedge_delay_ms(hedging, usable)
        terms = {name: t.shown() for name, t in scored.items()}
    else:
        ordered = order(
            strategy,
            capable,
            payment_id=req.payment_id,
            weights=weights,
            scores={n: h.score for n, h in health.items()},
            exploration=exploration,
        )
    candidates: list[Channel] = []
    reserve: list[Channel] = []
    for name in ordered:
        view = health[name]
        if view.state in ("open", "forced_open"):
            considered.append(Considered(name, "breaker_open", view))
            if view.state == "open":
                reserve.append(accounts[name].channel)
        else:
            considered.append(Considered(name, None, view))
            candidates.append(accounts[name].channel)
    _, breaker = breakers.settings()
    if breaker.last_resort == 0:
        reserve = []
    decision = Decision(
        rule, strategy, candidates, health, considered, reserve, terms, hedge_delay_ms=hedge_ms
    )
    if not candidates and not reserve:
        raise ChannelDown(
            "channel_unavailable",
            f"rule {rule!r}: every account that could take this payment is open "
            f"({', '.join(ordered)}); nothing was created, retry later",
        )
    return decision
