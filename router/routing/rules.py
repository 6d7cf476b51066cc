"""Routing rules from the operators' file: what they match, and how they order accounts.

Rules are tried in file order; the first whose `match` fits the payment decides the candidate
accounts and the strategy. No match: every capable account, in file order, with the defaults'
strategy. Strategies order the candidates (the first is tried first, the rest are failover):

- `priority`: as listed;
- `weighted`: a deterministic split by payment id (the same payment always lands on the same
  account), the rest by weight;
- `score`: highest health score first; an `exploration` share of payments (again chosen by
  payment id) tries a lower-ranked account first, so a recovered account gets noticed;
- `adaptive`: decayed success per dimension, latency, fee, outliers and Thompson-sampled
  exploration (`router.routing.adaptive`, which `decide` calls instead of `order`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

from channels.base import Method, Wallet

AccountName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,63}$")]
Strategy = Literal["priority", "weighted", "score", "adaptive"]
_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


class AmountRange(BaseModel):
    """Minor units: `gte` inclusive, `lt` exclusive."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gte: StrictInt | None = Field(default=None, ge=0)
    lt: StrictInt | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> AmountRange:
        if self.gte is not None and self.lt is not None and self.lt <= self.gte:
            raise ValueError("lt must be greater than gte")
        return self

    def contains(self, amount: int) -> bool:
        return (self.gte is None or amount >= self.gte) and (self.lt is None or amount < self.lt)


class TimeWindow(BaseModel):
    """Local time of day `from` (inclusive) to `to` (exclusive); may wrap past midnight."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    start: str = Field(alias="from")
    end: str = Field(alias="to")
    tz: str = "Asia/Shanghai"

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not _CLOCK.fullmatch(value):
            raise ValueError("must be HH:MM (24-hour)")
        return value

    @field_validator("tz")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    def contains(self, moment: datetime) -> bool:
        local = moment.astimezone(ZoneInfo(self.tz)).time()
        start, end = time.fromisoformat(self.start), time.fromisoformat(self.end)
        if start <= end:
            return start <= local < end
        return local >= start or local < end


class Match(BaseModel):
    """Every condition given must hold; an empty match matches everything."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: list[Method] | None = None
    wallet: list[Wallet] | None = None
    currency: list[Annotated[str, Field(pattern=r"^[A-Z]{3}$")]] | None = None
    amount: AmountRange | None = None
    merchant: list[str] | None = None
    metadata: dict[str, str] | None = None
    time: TimeWindow | None = None


@dataclass(frozen=True)
class RouteRequest:
    """What rules look at."""

    payment_id: str
    method: Method
    currency: str
    amount: int
    wallet: Wallet | None
    merchant_id: str
    metadata: Mapping[str, str]
    now: datetime


def matches(match: Match, req: RouteRequest) -> bool:
    return (
        (match.method is None or req.method in match.method)
        and (match.wallet is None or (req.wallet is not None and req.wallet in match.wallet))
        and (match.currency is None or req.currency in match.currency)
        and (match.amount is None or match.amount.contains(req.amount))
        and (match.merchant is None or req.merchant_id in match.merchant)
        and (
            match.metadata is None
            or all(req.metadata.get(k) == v for k, v in match.metadata.items())
        )
        and (match.time is None or match.time.contains(req.now))
    )


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
    match: Match = Match()
    strategy: Strategy = "priority"
    accounts: Annotated[list[AccountName], Field(min_length=1)]
    weights: dict[AccountName, Annotated[int, Field(ge=0, le=1_000_000)]] | None = None
    exploration: Annotated[float, Field(ge=0.0, le=0.5)] = 0.05

    @model_validator(mode="after")
    def _weights(self) -> Rule:
        if self.strategy == "weighted":
            if not self.weights:
                raise ValueError("a weighted rule needs weights")
            unknown = sorted(set(self.weights) - set(self.accounts))
            if unknown:
                raise ValueError(f"weights name accounts not in the rule: {', '.join(unknown)}")
            if sum(self.weights.values()) <= 0:
                raise ValueError("weights must not all be zero")
        elif self.weights is not None:
            raise ValueError("weights are for the weighted strategy only")
        if len(set(self.accounts)) != len(self.accounts):
            raise ValueError("an account is listed twice")
        return self


class Defaults(BaseModel):
    """How payments that match no rule are routed (all capable accounts, in file order)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: Literal["priority", "score", "adaptive"] = "priority"
    exploration: Annotated[float, Field(ge=0.0, le=0.5)] = 0.05


def fraction(payment_id: str, salt: str) -> float:
    """A stable number in [0, 1) from the payment id: the same payment, the same choice."""
    digest = hashlib.sha256(f"{salt}:{payment_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def order(
    strategy: Strategy,
    names: Sequence[str],
    *,
    payment_id: str,
    weights: Mapping[str, int] | None = None,
    scores: Mapping[str, float] | None = None,
    exploration: float = 0.0,
) -> list[str]:
    """Order candidate account names by the strategy."""
    names = list(names)
    if strategy == "weighted" and weights:
        ranked = sorted(names, key=lambda n: -weights.get(n, 0))
        total = sum(weights.get(n, 0) for n in names)
        if total <= 0:
            return ranked
        point, acc = fraction(payment_id, "weight") * total, 0
        for name in names:
            acc += weights.get(name, 0)
            if point < acc:
                return [name] + [n for n in ranked if n != name]
        return ranked
    if strategy == "score" and scores is not None:
        ranked = sorted(names, key=lambda n: -scores.get(n, 0.0))
        if len(ranked) > 1 and fraction(payment_id, "explore") < exploration:
            pick = 1 + int(fraction(payment_id, "explore-pick") * (len(ranked) - 1))
            return [ranked[pick]] + [n for n in ranked if n != ranked[pick]]
        return ranked
    return names
