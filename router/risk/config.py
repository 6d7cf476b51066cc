"""The operators' risk file (`config/risk.yaml`, `PAYROUTER_RISK`): rate limits per merchant
tier, velocity windows and rules, validated like the routing file.

An invalid file is refused with one line per problem (`router.config_file`), for example:

    config/risk.yaml:31: rules.2.when: no such name 'ip_payers_2h' (velocity windows: 10m, 1h, 24h)

Every field is described in docs/risk.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from router.config_file import FileProblems, Problem, YamlFile, read_yaml, schema_problems
from router.risk.rules import CompiledRule, Feature, RuleError, compile_rule

Kind = Literal["create", "read", "refund"]
"""Which budget a request draws on: `POST /v1/payments`, `POST /v1/payments/{id}/refunds`,
and every other merchant request."""
KINDS: tuple[Kind, ...] = ("create", "read", "refund")
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")]
_DURATION = re.compile(r"^([1-9][0-9]*)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
BUCKETS_PER_WINDOW = 12
"""A velocity window is kept as this many buckets: a count covers between 11/12 and all of
its window."""


class RiskError(FileProblems):
    """A risk file that cannot be used; `problems` holds one line per problem."""

    check_command = "payrouter risk check"


class Budget(BaseModel):
    """A token bucket: `per_second` tokens come back each second, at most `burst` are kept."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_second: float = Field(gt=0, le=1_000_000)
    burst: StrictInt = Field(ge=1, le=1_000_000)


class Budgets(BaseModel):
    """One budget per kind of request; a kind left out is not limited at this level."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    create: Budget | None = None
    read: Budget | None = None
    refund: Budget | None = None

    def of(self, kind: Kind) -> Budget | None:
        budget: Budget | None = getattr(self, kind)
        return budget


class Tier(BaseModel):
    """What a merchant of this tier may send: over all its keys, and per API key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    merchant: Budgets = Budgets()
    key: Budgets = Budgets()


class RateLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    tiers: dict[Name, Tier] = Field(default_factory=lambda: {"default": Tier()})
    merchants: dict[str, Name] = Field(default_factory=dict)
    """Merchant id -> tier; every other merchant is in `default`."""
    global_: Budgets = Field(default=Budgets(), alias="global")
    """A ceiling over every merchant together, per router fleet."""
    scan: Budget | None = Budget(per_second=0.1, burst=10)
    """Scans of one payment link from one client address (a buyer's action)."""

    @model_validator(mode="after")
    def _known_tiers(self) -> RateLimits:
        if "default" not in self.tiers:
            raise ValueError("tiers must include 'default'")
        return self


class Velocity(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    windows: Annotated[list[str], Field(min_length=1, max_length=6)] = ["10m", "1h", "24h"]

    @field_validator("windows")
    @classmethod
    def _durations(cls, value: list[str]) -> list[str]:
        for item in value:
            if not _DURATION.fullmatch(item):
                raise ValueError(f"{item!r}: a window is a duration such as 10m, 1h or 24h")
            if window_s(item) < BUCKETS_PER_WINDOW:
                raise ValueError(f"{item!r}: a window is at least {BUCKETS_PER_WINDOW}s")
            if window_s(item) > 31 * 86400:
                raise ValueError(f"{item!r}: a window is at most 31d")
        if len(set(value)) != len(value):
            raise ValueError("a window is listed twice")
        return value


Action = Literal["block", "flag", "limit"]


class RuleSpec(BaseModel):
    """One rule as written: `when` is a CEL expression (docs/risk.md lists its names)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    when: Annotated[str, Field(min_length=1, max_length=4000)]
    action: Action
    max_amount: StrictInt | None = Field(default=None, ge=0)
    """For `limit`: the highest amount (minor units) a matching payment may have."""
    description: str = ""

    @model_validator(mode="after")
    def _ceiling(self) -> RuleSpec:
        if (self.action == "limit") != (self.max_amount is not None):
            raise ValueError("max_amount goes with action: limit, and only with it")
        return self


class RiskFile(BaseModel):
    """The whole risk file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    timezone: str = "Asia/Shanghai"
    """The zone of `hour` and `weekday` in rules."""
    rate_limits: RateLimits = RateLimits()
    velocity: Velocity = Velocity()
    rules: list[RuleSpec] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


def window_s(name: str) -> int:
    """The length of a window named like `10m`, in seconds."""
    found = _DURATION.fullmatch(name)
    if found is None:
        raise ValueError(name)
    return int(found.group(1)) * _UNIT_S[found.group(2)]


@dataclass(frozen=True)
class Plan:
    """What a risk file asks to count, worked out once per file: the (subject, window,
    length ms) groups, the windows of distinct payers per IP, and every feature with its
    window's length."""

    groups: tuple[tuple[str, str, int], ...] = ()
    payer_lengths: tuple[int, ...] = ()
    features: tuple[tuple[Feature, int], ...] = ()


def plan_of(rules: list[CompiledRule]) -> Plan:
    groups: dict[tuple[str, str], int] = {}
    payers: set[int] = set()
    features: dict[str, tuple[Feature, int]] = {}
    for rule in rules:
        for f in rule.features:
            length = window_s(f.window) * 1000
            features[f.name] = (f, length)
            if f.measure == "payers":
                payers.add(length)
            else:
                groups.setdefault((f.subject, f.window), length)
    return Plan(
        tuple((subject, name, length) for (subject, name), length in groups.items()),
        tuple(sorted(payers)),
        tuple(features.values()),
    )


@dataclass(frozen=True)
class RiskConfig:
    """A validated risk file with its rules compiled."""

    file: RiskFile
    rules: tuple[CompiledRule, ...]
    path: Path | None
    digest: str
    features: frozenset[Feature] = field(default=frozenset())
    """The velocity features some rule reads: only these are counted."""
    names: frozenset[str] = field(default=frozenset())
    """Every name some rule reads: only these are worked out for a request."""
    plan: Plan = Plan()

    def tier_of(self, merchant_id: str) -> Tier:
        limits = self.file.rate_limits
        return limits.tiers[limits.merchants.get(merchant_id, "default")]


OFF = RiskConfig(
    RiskFile(version=1, rate_limits=RateLimits(tiers={"default": Tier()})), (), None, "off"
)
"""No limits and no rules: a router started without a risk file (tests, tools)."""


def _tier_references(document: dict[str, object]) -> list[Problem]:
    limits = document.get("rate_limits")
    if not isinstance(limits, dict):
        return []
    tiers, merchants = limits.get("tiers"), limits.get("merchants")
    names = set(tiers) if isinstance(tiers, dict) else {"default"}
    problems: list[Problem] = []
    for mch, tier in merchants.items() if isinstance(merchants, dict) else ():
        if isinstance(tier, str) and tier not in names:
            problems.append((("rate_limits", "merchants", mch), f"no tier named {tier!r}"))
    return problems


def load_risk(path: Path) -> RiskConfig:
    """Read, validate and compile a risk file; raises `RiskError` naming every problem."""
    read = read_yaml(path, RiskError)
    found = _tier_references(read.document)
    try:
        file = RiskFile.model_validate(read.document)
    except ValidationError as exc:
        raise read.refuse(schema_problems(exc) + found, RiskError) from None
    rules, problems = _compile(file)
    found += problems
    if found:
        raise read.refuse(found, RiskError)
    return _config(file, rules, read)


def _compile(file: RiskFile) -> tuple[list[CompiledRule], list[Problem]]:
    rules: list[CompiledRule] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    windows = file.velocity.windows
    for i, spec in enumerate(file.rules):
        if spec.name in seen:
            problems.append((("rules", i, "name"), f"rule name {spec.name!r} is used twice"))
        seen.add(spec.name)
        try:
            rules.append(compile_rule(spec.name, spec.action, spec.max_amount, spec.when, windows))
        except RuleError as exc:
            problems.append((("rules", i, "when"), str(exc)))
    return rules, problems


def _config(file: RiskFile, rules: list[CompiledRule], read: YamlFile) -> RiskConfig:
    features = frozenset(name for rule in rules for name in rule.features)
    names = frozenset(name for rule in rules for name in rule.names)
    return RiskConfig(file, tuple(rules), read.path, read.digest, features, names, plan_of(rules))
