"""Risk control in a running router: the risk file in force, the operators' lists, and the
one round trip a request costs (`RiskStore.screen`).

`take` draws a read's or a refund's token; `screen` draws a create's token and counts and
reads its velocity features in the same script, then runs the rules in the process. Neither
knows HTTP: the API turns a refusal into `429` and a block into `402` (`router.api.limits`).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from router.clock import Clock
from router.metrics import Metrics
from router.risk.config import OFF, Kind, RiskConfig, RiskError, load_risk, window_s
from router.risk.rules import RiskRequest, Verdict, activation, evaluate
from router.store.risk import Bucket, RiskStore, ScreenCall, Screened, Taken, Window

log = logging.getLogger("payrouter.risk")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class RiskList:
    """A list as rules test it: payer ids (any text) and IP networks."""

    texts: frozenset[str]
    networks: tuple[Network, ...]

    @classmethod
    def of(cls, entries: Iterable[str]) -> RiskList:
        texts, networks = set(), []
        for entry in entries:
            texts.add(entry)
            network = parse_network(entry)
            if network is not None:
                networks.append(network)
        return cls(frozenset(texts), tuple(networks))

    def holds(self, payer: str | None, ip: str | None) -> bool:
        if payer and payer in self.texts:
            return True
        if not ip or not self.networks:
            return False
        address = ipaddress.ip_address(ip)
        return any(address in network for network in self.networks)


def parse_network(entry: str) -> Network | None:
    """An entry as an IP network (a bare address is its own /32 or /128), or None."""
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return None


_MEASURE_INDEX = {"count": 0, "sum": 1, "failed": 2}


@dataclass(frozen=True)
class Screen:
    """What screening a create found: the rate limit, and (if a token was had) the verdict
    and the feature values it was made on."""

    taken: Taken | None
    verdict: Verdict | None
    features: dict[str, int] = field(default_factory=dict)
    lists: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pending:
    """A create's screen, built by `RiskControl.prepare` and not yet sent."""

    config: RiskConfig
    req: RiskRequest
    distinct: tuple[str, str, list[int]] | None
    call: ScreenCall


@dataclass
class RiskStatus:
    """What the last reload of the risk file did (`/admin/risk`)."""

    version: str
    loaded_at_ms: int
    last_error: list[str] | None = None
    last_error_at_ms: int | None = None


class RiskControl:
    """The risk file in force (replaced whole on reload) and the lists, per process."""

    def __init__(self, store: RiskStore, clock: Clock, metrics: Metrics, path: Path | None) -> None:
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.path = path
        self.config = OFF if path is None else load_risk(path)
        self.status = RiskStatus(self.config.digest, clock.now_ms())
        self.lists: dict[str, RiskList] = {}
        metrics.risk_version.info({"version": self.config.digest})

    def reload(self) -> bool:
        """Load the risk file again; swap it in only if it is valid. Returns success."""
        if self.path is None:
            return True
        try:
            config = load_risk(self.path)
        except RiskError as exc:
            self.status.last_error = exc.problems
            self.status.last_error_at_ms = self.clock.now_ms()
            self.metrics.risk_reloads.labels("refused").inc()
            log.error(
                "risk config refused; version %s stays in force:\n%s", self.config.digest, exc
            )
            return False
        changed = config.digest != self.config.digest
        self.config = config
        self.status = RiskStatus(config.digest, self.clock.now_ms())
        self.metrics.risk_reloads.labels("applied" if changed else "unchanged").inc()
        self.metrics.risk_version.info({"version": config.digest})
        log.info("risk config %s in force (%d rules)", config.digest, len(config.rules))
        return True

    async def refresh_lists(self) -> None:
        """Read every list again (every router does this every few seconds)."""
        found = await self.store.lists()
        self.lists = {name: RiskList.of(entries) for name, entries in found.items()}

    def _buckets(
        self, config: RiskConfig, mch: str, key_id: str | None, kind: Kind
    ) -> list[Bucket]:
        """The merchant's bucket and, with `key_id`, its API key's (a buyer's scan has none)."""
        tier = config.tier_of(mch)
        levels = (
            [(tier.merchant, None)]
            if key_id is None
            else [(tier.merchant, None), (tier.key, key_id)]
        )
        out = []
        for budgets, key in levels:
            budget = budgets.of(kind)
            if budget is not None:
                out.append(Bucket(kind, 1000 / budget.per_second, budget.burst, key))
        return out

    def _global(self, config: RiskConfig, kind: Kind) -> Bucket | None:
        budget = config.file.rate_limits.global_.of(kind)
        return None if budget is None else Bucket(kind, 1000 / budget.per_second, budget.burst)

    async def take(self, mch: str, key_id: str, kind: Kind) -> Taken | None:
        """Draw one token for a request of `kind`; None when nothing limits it."""
        config = self.config
        buckets = self._buckets(config, mch, key_id, kind)
        glob = self._global(config, kind)
        if not buckets and glob is None:
            return None
        screened = await self.store.screen(mch, self.clock.now_ms(), buckets, global_bucket=glob)
        self.count_refusal(screened.taken, kind)
        return screened.taken

    async def take_unauthenticated(self, address: str) -> Taken | None:
        """Draw one token for a request that failed authentication, from its client
        address's own bucket (the `default` tier's per-key `read` budget, else its merchant
        `read` budget): guessing keys from one address is slowed down like one key's reads,
        and no merchant's budget is spent by someone who is not it. None when not limited."""
        tier = self.config.file.rate_limits.tiers["default"]
        budget = tier.key.of("read") or tier.merchant.of("read")
        if budget is None:
            return None
        bucket = Bucket("unauthenticated", 1000 / budget.per_second, budget.burst)
        screened = await self.store.screen(f"ip:{address}", self.clock.now_ms(), [bucket])
        self.count_refusal(screened.taken, "unauthenticated")
        return screened.taken

    def count_refusal(self, taken: Taken | None, kind: str) -> None:
        """Count a 429 in the metrics."""
        if taken is not None and not taken.allowed:
            self.metrics.rate_limited.labels(kind).inc()

    def prepare(self, key_id: str, req: RiskRequest) -> Pending | None:
        """The screen script call of a create, built but not sent, so that it can share the
        round trip of the create's first store call (`router.api.middleware.idempotency`);
        None when nothing limits or judges creates."""
        config = self.config
        buckets = self._buckets(config, req.merchant, key_id, "create")
        return self._pending(config, req, buckets, self._global(config, "create"))

    def _pending(
        self,
        config: RiskConfig,
        req: RiskRequest,
        buckets: list[Bucket],
        glob: Bucket | None,
        counted: frozenset[str] = frozenset(),
    ) -> Pending | None:
        if not buckets and glob is None and not config.rules:
            return None
        windows, distinct = self._windows(config, req)
        call = ScreenCall(
            req.merchant,
            self.clock.now_ms(),
            buckets,
            windows,
            (1, req.amount),
            distinct,
            glob,
            counted,
        )
        return Pending(config, req, distinct, call)

    async def screen_scan(self, link_id: str, req: RiskRequest) -> Screen:
        """A buyer's scan of a payment link, which makes a checkout: it draws from the link's
        merchant's `create` budget (no API key is involved) and from the scanning address's
        own bucket for this link (`rate_limits.scan`), then is counted and judged like a
        create. One round trip."""
        config = self.config
        buckets = self._buckets(config, req.merchant, None, "create")
        scan = config.file.rate_limits.scan
        if scan is not None and req.ip:
            key = f"{link_id}:{req.ip}"
            buckets.append(Bucket("scan", 1000 / scan.per_second, scan.burst, key))
        pending = self._pending(config, req, buckets, self._global(config, "create"))
        if pending is None:
            return Screen(None, Verdict("allow", (), None))
        return self.conclude(pending, await self.store.run(pending.call))

    async def screen_attach(self, req: RiskRequest, counted: frozenset[str]) -> Screen | None:
        """A checkout once its buyer's wallet is known (and with it the buyer's address and
        payer id): the rules judge the request again, complete now. No token is drawn (its
        create drew one); the attempt is added to the windows of the subjects not `counted`
        at create. None when no rules are in force."""
        config = self.config
        if not config.rules:
            return None
        pending = self._pending(config, req, [], None, counted)
        assert pending is not None
        return self.conclude(pending, await self.store.run(pending.call))

    def conclude(self, pending: Pending, screened: Screened) -> Screen:
        """Judge a prepared create on what its script found (a refusal is not judged)."""
        self.count_refusal(screened.taken, "create")
        if screened.taken is not None and not screened.taken.allowed:
            return Screen(screened.taken, None)
        call = pending.call
        features = self._features(
            pending.config, list(call.windows), pending.distinct, screened.windows, screened.payers
        )
        verdict, lists = self.judge(pending.config, pending.req, features)
        self._count(verdict)
        return Screen(screened.taken, verdict, features, lists)

    async def screen(self, key_id: str, req: RiskRequest) -> Screen:
        """Draw a create's token, count the attempt in the velocity windows the rules read,
        and run the rules: one round trip. A create refused by the rate limit is neither
        counted nor judged."""
        pending = self.prepare(key_id, req)
        if pending is None:
            return Screen(None, Verdict("allow", (), None))
        return self.conclude(pending, await self.store.run(pending.call))

    async def peek(self, req: RiskRequest) -> Screen:
        """The verdict the rules in force give `req` on the counters as they are now,
        counting nothing (`payrouter risk explain`)."""
        config = self.config
        windows, distinct = self._windows(config, req)
        if distinct is not None:
            distinct = (distinct[0], "", distinct[2])
        screened = await self.store.screen(
            req.merchant, self.clock.now_ms(), [], windows, (0, 0), distinct
        )
        features = self._features(config, windows, distinct, screened.windows, screened.payers)
        verdict, lists = self.judge(config, req, features)
        return Screen(None, verdict, features, lists)

    def judge(
        self, config: RiskConfig, req: RiskRequest, features: dict[str, int]
    ) -> tuple[Verdict, tuple[str, ...]]:
        """Run the rules on a request and its feature values."""
        lists = tuple(
            name for name, entries in self.lists.items() if entries.holds(req.payer, req.ip)
        )
        values = activation(req, features, lists, ZoneInfo(config.file.timezone), config.names)
        return evaluate(config.rules, values, req.amount), lists

    def _windows(
        self, config: RiskConfig, req: RiskRequest
    ) -> tuple[list[Window], tuple[str, str, list[int]] | None]:
        plan = config.plan
        values = {"payer": req.payer, "ip": req.ip, "merchant": req.merchant}
        windows = [
            Window(subject, value, name, length)
            for subject, name, length in plan.groups
            if (value := values[subject])
        ]
        distinct = None
        if plan.payer_lengths and req.ip:
            distinct = (req.ip, req.payer or "", list(plan.payer_lengths))
        return windows, distinct

    def _features(
        self,
        config: RiskConfig,
        windows: list[Window],
        distinct: tuple[str, str, list[int]] | None,
        counts: list[tuple[int, int, int]],
        payers: list[int],
    ) -> dict[str, int]:
        plan = config.plan
        by_window = {(w.subject, w.name): got for w, got in zip(windows, counts, strict=True)}
        by_length = {} if distinct is None else dict(zip(distinct[2], payers, strict=True))
        out: dict[str, int] = {}
        for f, length in plan.features:
            if f.measure == "payers":
                out[f.name] = by_length.get(length, 0)
            else:
                got = by_window.get((f.subject, f.window), (0, 0, 0))
                out[f.name] = got[_MEASURE_INDEX[f.measure]]
        return out

    def _count(self, verdict: Verdict) -> None:
        m = self.metrics
        m.risk_decisions.labels(verdict.decision).inc()
        if not verdict.fired and not verdict.errors:
            return
        actions = {rule.name: rule.action for rule in self.config.rules}
        for name in verdict.fired:
            m.risk_rule_hits.labels(name, actions.get(name, "unknown")).inc()
        for name in verdict.errors:
            m.risk_rule_errors.labels(name).inc()

    async def count_failure(self, mch: str, payer: str | None) -> None:
        """Count a failed attempt of a payer (the channel or a rule refused it), in the
        windows the rules read `payer_failed_*` over."""
        if not payer:
            return
        names = {
            f.window for rule in self.config.rules for f in rule.features if f.measure == "failed"
        }
        windows = [Window("payer", payer, n, window_s(n) * 1000) for n in names]
        await self.store.count_failure(mch, self.clock.now_ms(), windows)

    def describe(self) -> dict[str, Any]:
        """The risk file in force, for `/admin/risk`."""
        config = self.config
        return {
            "version": config.digest,
            "path": None if config.path is None else str(config.path),
            "loaded_at_ms": self.status.loaded_at_ms,
            "last_error": self.status.last_error,
            "rules": [
                {"name": r.name, "action": r.action, "when": r.source, "max_amount": r.max_amount}
                for r in config.rules
            ],
            "lists": sorted(self.lists),
        }
