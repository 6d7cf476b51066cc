"""What a running router holds: settings, store, channels, breakers and metrics.

The routing file and the channel adapters built from it form one `RoutingTable`, replaced
whole on reload: a request sees either the old table or the new one, never a mix.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from channels.base import Channel
from channels.credentials import CredentialsError
from channels.errors import ChannelError, ChannelOutcomeUnknown, ChannelRejected, ChannelUnavailable
from channels.registry import REGISTRY
from router.clock import Clock
from router.damaged import DamagedRecords
from router.metrics import Metrics
from router.risk.control import RiskControl
from router.routing.config import AccountConfig, ConfigError, LoadedConfig, load_config
from router.routing.decide import Candidate
from router.routing.health import Breakers, BreakerSettings, HealthSettings
from router.routing.hedge import HedgeBudget
from router.settings import Settings
from router.store import Store

log = logging.getLogger("payrouter")
T = TypeVar("T")


def _build(
    name: str,
    account: AccountConfig,
    base_dir: Path,
    session: aiohttp.ClientSession,
    clock: Clock,
) -> Channel:
    return REGISTRY[account.type].build(name, account, base_dir, session, clock)


def build_accounts(
    loaded: LoadedConfig, session: aiohttp.ClientSession, clock: Clock
) -> dict[str, Candidate]:
    """One channel adapter per account in the routing file, in file order."""
    out: dict[str, Candidate] = {}
    for name, account in loaded.config.accounts.items():
        try:
            channel = _build(name, account, loaded.base_dir, session, clock)
        except CredentialsError as exc:
            raise ConfigError(
                loaded.path, [f"{loaded.path}: accounts.{name}.credentials: {exc}"]
            ) from None
        out[name] = Candidate(channel=channel, livemode=account.livemode)
    return out


@dataclass(frozen=True)
class RoutingTable:
    """A validated routing file and the channel adapters built from it."""

    loaded: LoadedConfig
    accounts: dict[str, Candidate]

    @classmethod
    def load(cls, path: Path, session: aiohttp.ClientSession, clock: Clock) -> RoutingTable:
        """Read and validate the routing file and build its adapters on `clock`."""
        loaded = load_config(path)
        return cls(loaded, build_accounts(loaded, session, clock))


@dataclass
class ReloadStatus:
    """What the last reload attempt did, for `/admin/routing` and the logs."""

    version: str
    loaded_at_ms: int
    last_error: list[str] | None = None
    last_error_at_ms: int | None = None


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    store: Store
    table: RoutingTable
    session: aiohttp.ClientSession
    metrics: Metrics = field(default_factory=Metrics)
    breakers: Breakers = field(init=False)
    reload_status: ReloadStatus = field(init=False)
    damaged: DamagedRecords = field(init=False)
    """Where readers report store records they cannot decode (`router.damaged`)."""
    risk: RiskControl = field(init=False)
    """Rate limits and risk rules (`router.risk`); raises `RiskError` for a bad risk file."""
    record: Any = None
    """The record (`router.record.Record`), set by `router.app`: where reads of objects that
    left Redis go. Typed loosely: the record's package sits beside this one, not below."""
    order_checks_paused_until: float = 0.0
    """Monotonic time until which creates skip asking the record about their
    merchant_order_id, after it failed to answer (`router.payments.recorded.order_holder`)."""
    hedge_budget: HedgeBudget = field(default_factory=HedgeBudget)
    """This process's allowance of hedged creates (`router.routing.hedge`)."""
    background: set[asyncio.Task[None]] = field(default_factory=set)
    """Work a request left running (a hedged create's loser); ended at shutdown."""

    def __post_init__(self) -> None:
        self.damaged = DamagedRecords(self.metrics)
        self.risk = RiskControl(self.store.risk, self.clock, self.metrics, self.settings.risk_path)
        self.breakers = Breakers(
            self.store.breakers,
            self.clock,
            self._health_settings,
            cache_s=self.settings.health_cache_s,
        )
        self.reload_status = ReloadStatus(self.table.loaded.digest, self.clock.now_ms())

    def _health_settings(self) -> tuple[HealthSettings, BreakerSettings]:
        config = self.table.loaded.config
        return config.health, config.breaker

    @property
    def config(self) -> LoadedConfig:
        return self.table.loaded

    @property
    def accounts(self) -> dict[str, Candidate]:
        return self.table.accounts

    def channel(self, account: str) -> Channel:
        """The adapter for `account`; unavailable if the routing file no longer has it."""
        found = self.table.accounts.get(account)
        if found is None:
            raise ChannelUnavailable(f"channel account {account} is not in the routing config")
        return found.channel

    def reload(self) -> bool:
        """Load the routing file again; swap it in only if it is valid. Returns success."""
        try:
            table = RoutingTable.load(self.settings.routing_path, self.session, self.clock)
        except ConfigError as exc:
            self.reload_status.last_error = exc.problems
            self.reload_status.last_error_at_ms = self.clock.now_ms()
            self.metrics.config_reloads.labels("refused").inc()
            log.error(
                "routing config refused; version %s stays in force:\n%s",
                self.table.loaded.digest,
                exc,
            )
            return False
        changed = table.loaded.digest != self.table.loaded.digest
        self.table = table
        self.reload_status = ReloadStatus(table.loaded.digest, self.clock.now_ms())
        self.metrics.config_reloads.labels("applied" if changed else "unchanged").inc()
        self.metrics.config_version.info({"version": table.loaded.digest})
        log.info(
            "routing config %s in force (accounts %s, %d rules)",
            table.loaded.digest,
            ", ".join(table.accounts),
            len(table.loaded.config.rules),
        )
        return True

    async def call(self, account: str, operation: str, step: Callable[[], Awaitable[T]]) -> T:
        """Run one channel call, recording its outcome and latency."""
        started = time.perf_counter()
        outcome = "ok"
        try:
            return await step()
        except ChannelRejected as exc:
            outcome = f"rejected_{exc.fault}"
            raise
        except ChannelOutcomeUnknown:
            outcome = "unknown"
            raise
        except ChannelError:
            outcome = "unavailable"
            raise
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.channel_calls.labels(account, operation, outcome).inc()
            self.metrics.channel_latency.labels(account, operation).observe(elapsed)
            log.info(
                "channel call %s %s: %s",
                account,
                operation,
                outcome,
                extra={
                    "account": account,
                    "operation": operation,
                    "outcome": outcome,
                    "duration_ms": round(elapsed * 1000, 1),
                },
            )

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run `work` beyond the request that started it (kept until it ends)."""
        task = asyncio.create_task(work, name=name)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def stop_background(self) -> None:
        """End what `spawn` started (at shutdown: a loser's outcome is only worth learning)."""
        tasks = list(self.background)
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)

    def callback_url(self, account: str) -> str:
        return f"{self.settings.base_url}/v1/notify/{account}"

    def idempotency_lease_ms(self) -> int:
        """How long a request owns its Idempotency-Key unless it renews it."""
        return int(self.settings.idempotency_lease_s * 1000)

    def check_replicated(self, write: str, replicas: int | None) -> None:
        """Count (and log) a create answered before the replicas asked for had it."""
        wanted = self.settings.redis_wait_replicas
        if replicas is not None and replicas < wanted:
            self.metrics.unreplicated.labels(write).inc()
            log.warning(
                "%s acknowledged by %d of %d Redis replicas within %g s",
                write,
                replicas,
                wanted,
                self.settings.redis_wait_s,
            )
