"""Risk rules: CEL expressions compiled once at load, evaluated on every create.

A rule's `when` sees the request, the velocity features it names and the operators' lists
the request is on (docs/risk.md has the table). Expressions are CEL (the `cel` package,
compiled in Rust: a rule costs microseconds), checked at load twice: every name must be
known, and the expression is evaluated once on sample values, so a syntax error, an unknown
name or a type error (`amount > "1"`) refuses the file instead of failing payments.

Rules are all evaluated, in file order; the decision is the strongest action that fired:
`block` (or a `limit` whose ceiling the amount passes) over `flag` over `allow`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import cel

from channels.base import WALLETS

Decision = Literal["allow", "flag", "block"]
Subject = Literal["payer", "ip", "merchant"]
Measure = Literal["count", "sum", "failed", "payers"]
MEASURES: dict[Subject, tuple[Measure, ...]] = {
    "payer": ("count", "sum", "failed"),
    "ip": ("count", "sum", "payers"),
    "merchant": ("count", "sum"),
}
"""Which velocity measures each subject keeps (`<subject>_<measure>_<window>` in rules)."""
_FEATURE = re.compile(r"^(payer|ip|merchant)_(count|sum|failed|payers)_([0-9]+[smhd])$")
_BINDER = r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*{name}\s*,"
_SAMPLE_REQUEST: dict[str, Any] = {
    "amount": 100,
    "currency": "CNY",
    "method": "qr",
    "wallet": WALLETS[0],
    "channel": "",
    "merchant": "mch_sample",
    "livemode": False,
    "metadata": {},
    "ip": "203.0.113.9",
    "network": "203.0.113.0/24",
    "payer": "payer_sample",
    "hour": 12,
    "weekday": 3,
    "lists": [],
}
REQUEST_NAMES = frozenset(_SAMPLE_REQUEST)


class RuleError(ValueError):
    """A rule that cannot be used, with the reason."""


@dataclass(frozen=True)
class Feature:
    """One velocity feature a rule reads, e.g. `ip_payers_1h`."""

    name: str
    subject: Subject
    measure: Measure
    window: str


def parse_feature(name: str, windows: Sequence[str]) -> Feature | None:
    """The feature `name` stands for, or None if it is not a feature name at all; raises
    `RuleError` for a feature-like name the file does not keep."""
    found = _FEATURE.fullmatch(name)
    if found is None:
        return None
    subject, measure, window = found.groups()
    if measure not in MEASURES[subject]:  # type: ignore[index]
        kept = ", ".join(MEASURES[subject])  # type: ignore[index]
        raise RuleError(f"no such name {name!r} ({subject} keeps {kept})")
    if window not in windows:
        raise RuleError(f"no such name {name!r} (velocity windows: {', '.join(windows)})")
    return Feature(name, subject, measure, window)  # type: ignore[arg-type]


@dataclass(frozen=True)
class CompiledRule:
    name: str
    action: Literal["block", "flag", "limit"]
    max_amount: int | None
    source: str
    program: cel.Program
    features: tuple[Feature, ...]
    names: tuple[str, ...]
    """The request names and features the expression reads: only these are handed to it
    (converting values into CEL is most of a rule's cost)."""


def compile_rule(
    name: str,
    action: Literal["block", "flag", "limit"],
    max_amount: int | None,
    source: str,
    windows: Sequence[str],
) -> CompiledRule:
    """Compile and check one rule; raises `RuleError` saying what is wrong."""
    try:
        program = cel.compile(source)
    except ValueError as exc:
        raise RuleError(_first_line(exc)) from None
    features: list[Feature] = []
    for var in program.variables():
        if var in REQUEST_NAMES:
            continue
        feature = parse_feature(var, windows)
        if feature is not None:
            features.append(feature)
        elif not re.search(_BINDER.format(name=re.escape(var)), source):
            raise RuleError(f"no such name {var!r} (docs/risk.md lists the names rules see)")
    sample = _SAMPLE_REQUEST | {f.name: 1 for f in features}
    try:
        result = program.execute(sample)
    except KeyError:
        result = False  # a metadata key the sample lacks: fine, and false at run time too
    except (TypeError, RuntimeError, ValueError) as exc:
        raise RuleError(_first_line(exc)) from None
    if not isinstance(result, bool):
        raise RuleError(f"must be true or false, not {type(result).__name__}")
    names = tuple(var for var in program.variables() if var in REQUEST_NAMES or var in sample)
    return CompiledRule(name, action, max_amount, source, program, tuple(features), names)


def _first_line(exc: Exception) -> str:
    return " ".join(str(exc).split("\n", 1)[0].split())


@dataclass(frozen=True)
class RiskRequest:
    """What rules see of a create request."""

    merchant: str
    amount: int
    currency: str
    method: str
    wallet: str | None
    channel: str | None
    livemode: bool
    metadata: Mapping[str, str]
    ip: str | None
    payer: str | None
    now: datetime


def network_of(ip: str | None) -> str:
    """The client's network as rules see it: the /24 of an IPv4 address, the /48 of IPv6."""
    if not ip:
        return ""
    address = ipaddress.ip_address(ip)
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def activation(
    req: RiskRequest,
    features: Mapping[str, int],
    lists: Sequence[str],
    zone: ZoneInfo,
    needed: frozenset[str] = REQUEST_NAMES,
) -> dict[str, Any]:
    """The names a rule's expression sees (those in `needed` at least)."""
    values: dict[str, Any] = {
        "amount": req.amount,
        "currency": req.currency,
        "method": req.method,
        "wallet": req.wallet or "",
        "channel": req.channel or "",
        "merchant": req.merchant,
        "livemode": req.livemode,
        "metadata": dict(req.metadata),
        "ip": req.ip or "",
        "payer": req.payer or "",
        "lists": list(lists),
        **features,
    }
    if "network" in needed:
        values["network"] = network_of(req.ip)
    if "hour" in needed or "weekday" in needed:
        local = req.now.astimezone(zone)
        values["hour"], values["weekday"] = local.hour, local.isoweekday()
    return values


@dataclass(frozen=True)
class Verdict:
    """The decision, the rules that fired (file order) and why, and rules that failed."""

    decision: Decision
    fired: tuple[str, ...]
    reason: str | None
    """For a block: the message naming the rule."""
    errors: tuple[str, ...] = ()

    @property
    def blocking_rule(self) -> str | None:
        return self.fired[0] if self.decision == "block" and self.fired else None


def evaluate(rules: Sequence[CompiledRule], values: Mapping[str, Any], amount: int) -> Verdict:
    """Run every rule; an expression that fails at run time (a metadata key the request
    lacks) counts as not fired and is reported in `errors`."""
    blocks: list[tuple[str, str]] = []
    flags: list[str] = []
    errors: list[str] = []
    for rule in rules:
        try:
            fired = rule.program.execute({n: values[n] for n in rule.names}) is True
        except (KeyError, TypeError, RuntimeError, ValueError):
            errors.append(rule.name)
            continue
        if not fired:
            continue
        if rule.action == "block":
            blocks.append((rule.name, f"blocked by risk rule {rule.name}"))
        elif rule.action == "flag":
            flags.append(rule.name)
        elif rule.max_amount is not None and amount > rule.max_amount:
            blocks.append(
                (
                    rule.name,
                    f"amount {amount} is above {rule.max_amount}, the ceiling of risk rule "
                    f"{rule.name}",
                )
            )
    if blocks:
        names = tuple(name for name, _ in blocks) + tuple(flags)
        return Verdict("block", names, blocks[0][1], tuple(errors))
    if flags:
        return Verdict("flag", tuple(flags), None, tuple(errors))
    return Verdict("allow", (), None, tuple(errors))
