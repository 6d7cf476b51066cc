"""The `adaptive` strategy: success rate that fades, priced and timed, with measured curiosity.

For each candidate account, from its shared health window (`router.routing.window`):

- **success**: a Beta posterior over decayed counts (each window bucket weighs
  0.5 ** (age / `half_life_s`) × 0.5 ** (newer calls / `half_calls`): a busy leader is
  judged on its last calls, an idle account keeps its record, fading with time), starting
  from a prior of `prior_weight` pseudo-calls at
  `prior_success`. Calls of the payment's own dimension (method and amount band) count in
  full, the account's other calls at `dimension_weight`. The mean ranks; one draw from the
  posterior (Thompson sampling) decides exploration.
- **latency**: the decayed latency histogram's p95 against `health.latency_slo_ms`: the
  success is multiplied by min(1, slo / p95). This process's creates still under way past
  the SLO, or outraced by their hedge (`router.routing.hedge`), count as slow calls at once,
  so a slow account shows before its slow calls end.
- **fee**: the account's fee (percent, the routing file's `fees`) times `fee_weight`,
  subtracted; with `fee_weight` 0 the fee only breaks ties.
- **outlier**: an account with at least `outlier_min_calls` decayed calls whose success is
  more than `outlier_gap` below the best of its peers goes to the end of the list: tried
  only when every other account has failed, and never explored, until its evidence fades.

Order: the accounts whose utility is within `tolerance` of the best (or could be, within
`confidence` standard deviations of their posterior), cheapest first (then by utility), but
those whose p99 is past the SLO after the others: one slow call in a hundred, or a create
outraced by its hedge, is enough to hand the lead to an equally reliable account that is
fast, long before the p95 moves the utility; then
the others by utility; half-open accounts after them and outliers last. A half-open account
(an outlier or not: its probes are how it shows it has recovered) goes first for
`probe_share` of payments, so its probes (limited by the breaker across every process) come
at once instead of by chance. With probability `exploration` (the rule's) the
non-leader with the best Thompson draw goes first if that draw comes within `tolerance` of
the leader. A well-known poor account's draw never does; an account nobody has called for a
while has faded back to the prior, whose draws often do: the rate at which it is retried
grows with the time it has gone unobserved.

Everything is computed from the snapshot `router.routing.health.Breakers` keeps (read at
most every `health_cache_s`), so a decision costs no round trip of its own. The random
draws come from the payment id: the same payment, the same decision (`routes explain
--payment-id`).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from router.routing.health import AccountHealth
from router.routing.hedge import HedgeSettings
from router.routing.window import decay


class AdaptiveSettings(BaseModel):
    """The routing file's `adaptive:` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    half_life_s: Annotated[float, Field(ge=1, le=3600)] = 20.0
    half_calls: Annotated[float | None, Field(ge=1, le=100_000)] = 25.0
    """Evidence also halves per this many newer calls of the account (None: by time only)."""
    prior_success: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.98
    prior_weight: Annotated[float, Field(gt=0, le=1000)] = 50.0
    dimension_weight: Annotated[float, Field(ge=0, le=1)] = 0.25
    tolerance: Annotated[float, Field(ge=0, le=0.2)] = 0.01
    confidence: Annotated[float, Field(ge=0, le=5)] = 0.5
    """How many posterior standard deviations an account's success may be short of the best
    and still count as equal: a new account is not thrown out by its first failure."""
    fee_weight: Annotated[float, Field(ge=0, le=100)] = 0.0
    """Success-rate points one percent of fee is worth (0: the fee only breaks ties)."""
    outlier_gap: Annotated[float, Field(gt=0, le=1)] = 0.15
    outlier_min_calls: Annotated[float, Field(ge=1)] = 10.0
    probe_share: Annotated[float, Field(ge=0, le=1)] = 0.2
    hedge: HedgeSettings = HedgeSettings()
    """Hedged creates (`router.routing.hedge`)."""


@dataclass(frozen=True)
class Terms:
    """One account's score, term by term (`routes explain`)."""

    success: float
    draw: float
    calls: float
    p95_ms: float | None
    p99_ms: float | None
    latency: float
    fee_pct: float
    fee_cost: float
    """What the fee takes off the utility (`fee_weight` × fee)."""
    utility: float
    outlier: bool
    role: str
    """leader, explored, group (within tolerance), ranked, probe, outlier, open."""

    def shown(self) -> dict[str, object]:
        """The terms as `routes explain` prints them (floats rounded)."""
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def rng_for(payment_id: str) -> random.Random:
    """The draws of one payment's decision."""
    return random.Random(f"adaptive:{payment_id}")  # noqa: S311 - routing, not secrets


@dataclass(frozen=True)
class _Scored:
    """One account's posterior and terms, before the ranking."""

    success: float
    spread: float
    """The posterior's standard deviation."""
    draw: float
    calls: float
    p95_ms: float | None
    p99_ms: float | None
    latency: float
    fee_pct: float
    fee_cost: float
    slow_tail: bool
    """Its p99 is past the SLO: among tied accounts, it goes after those whose is not."""

    @property
    def utility(self) -> float:
        return self.success * self.latency - self.fee_cost

    def hopeful(self, confidence: float) -> float:
        """The utility the account could have, `confidence` deviations up."""
        return (self.success + confidence * self.spread) * self.latency - self.fee_cost

    @property
    def drawn(self) -> float:
        """The utility of the Thompson draw."""
        return self.draw * self.latency - self.fee_cost


def _score(
    view: AccountHealth,
    *,
    settings: AdaptiveSettings,
    slo_ms: float,
    bucket_ms: int,
    fee: float,
    dim: str | None,
    slow: int,
    rng: random.Random,
) -> _Scored:
    window = decay(
        view.window,
        now_bucket=view.read_ms // bucket_ms if bucket_ms else 0,
        bucket_s=bucket_ms / 1000,
        half_life_s=settings.half_life_s,
        dim=dim,
        half_calls=settings.half_calls,
    )
    ok, fail = window.ok, window.fail
    if dim is not None:
        lam = settings.dimension_weight
        ok = window.dim_ok + lam * (window.ok - window.dim_ok)
        fail = window.dim_fail + lam * (window.fail - window.dim_fail)
    alpha = settings.prior_weight * settings.prior_success + max(0.0, ok)
    beta = settings.prior_weight * (1 - settings.prior_success) + max(0.0, fail)
    if slow:
        *fast, slowest = window.histogram
        window = replace(window, histogram=(*fast, slowest + slow))
    # The p95 scales the utility, so it waits for a few calls; the p99 only orders tied
    # accounts, and one slow call (an outraced create among them) is reason enough.
    p95 = window.p95_ms() if sum(window.histogram) >= 3 else None
    p99 = window.quantile_ms(0.99)
    total = alpha + beta
    return _Scored(
        success=alpha / total,
        spread=(alpha * beta / (total**2 * (total + 1))) ** 0.5,
        draw=rng.betavariate(alpha, beta),
        calls=window.calls,
        p95_ms=p95,
        p99_ms=p99,
        latency=min(1.0, slo_ms / p95) if p95 else 1.0,
        fee_pct=fee,
        fee_cost=settings.fee_weight * fee / 100,
        slow_tail=p99 is not None and p99 > slo_ms,
    )


def rank(
    names: Sequence[str],
    health: Mapping[str, AccountHealth],
    *,
    settings: AdaptiveSettings,
    slo_ms: float,
    bucket_ms: int,
    fees: Mapping[str, float],
    dim: str | None,
    exploration: float,
    rng: random.Random,
    slow_in_flight: Mapping[str, int] | None = None,
) -> tuple[list[str], dict[str, Terms]]:
    """The accounts in the order to try them, and each one's terms. `slow_in_flight`: calls
    under way for longer than the SLO, per account, counted as slow ones already."""
    scored = {
        name: _score(
            health[name],
            settings=settings,
            slo_ms=slo_ms,
            bucket_ms=bucket_ms,
            fee=fees.get(name, 0.0),
            dim=dim,
            slow=(slow_in_flight or {}).get(name, 0),
            rng=rng,
        )
        for name in names
    }
    best_success = max(s.success for s in scored.values())
    shut = [n for n in names if health[n].state in ("open", "forced_open")]
    # A half-open account is its breaker's question whether it has recovered: it is probed
    # whatever its (older) record says, or an account whose failures opened the breaker
    # would wait as an outlier until they faded.
    probing = [n for n in names if health[n].state == "half_open"]
    outliers = {
        n
        for n, s in scored.items()
        if s.calls >= settings.outlier_min_calls
        and s.success < best_success - settings.outlier_gap
        and n not in shut
        and n not in probing
    }
    usual = [n for n in names if n not in outliers and n not in probing and n not in shut]
    top = max((scored[n].utility for n in usual), default=0.0)
    group = [n for n in usual if scored[n].hopeful(settings.confidence) >= top - settings.tolerance]
    group.sort(key=lambda n: (scored[n].slow_tail, scored[n].fee_pct, -scored[n].utility))
    rest = sorted((n for n in usual if n not in group), key=lambda n: -scored[n].utility)
    ordered = group + rest
    roles = {n: "group" for n in group} | {n: "ranked" for n in rest}
    explore_roll, probe_roll = rng.random(), rng.random()
    if len(ordered) > 1 and explore_roll < exploration:
        challenger = max(ordered[1:], key=lambda n: scored[n].drawn)
        if scored[challenger].drawn >= scored[ordered[0]].utility - settings.tolerance:
            ordered.remove(challenger)
            ordered.insert(0, challenger)
            roles[challenger] = "explored"
    if probing and probe_roll < settings.probe_share:
        ordered = probing + ordered
    else:
        ordered = ordered + probing
    roles |= {n: "probe" for n in probing}
    roles |= {n: "outlier" for n in outliers} | {n: "open" for n in shut}
    # Outliers only after every other account; open ones only as the last resort.
    ordered += sorted(outliers, key=lambda n: -scored[n].utility)
    ordered += sorted(shut, key=lambda n: -scored[n].utility)
    if ordered and roles.get(ordered[0]) in ("group", "ranked"):
        roles[ordered[0]] = "leader"
    terms = {
        n: Terms(
            success=s.success,
            draw=s.draw,
            calls=s.calls,
            p95_ms=s.p95_ms,
            p99_ms=s.p99_ms,
            latency=s.latency,
            fee_pct=s.fee_pct,
            fee_cost=s.fee_cost,
            utility=s.utility,
            outlier=n in outliers,
            role=roles.get(n, "ranked"),
        )
        for n, s in scored.items()
    }
    return ordered, terms
