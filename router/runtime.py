"""What a running router holds: settings, store, channels and metrics, built at start-up."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import aiohttp

from channels.credentials import CredentialsError
from channels.errors import ChannelError, ChannelOutcomeUnknown, ChannelRejected
from channels.wechat.adapter import build as build_wechat
from router.clock import Clock
from router.config import ConfigError, LoadedConfig
from router.metrics import Metrics
from router.routing import Candidate
from router.settings import Settings
from router.store import Store

log = logging.getLogger("payrouter")
T = TypeVar("T")


def build_accounts(loaded: LoadedConfig, session: aiohttp.ClientSession) -> dict[str, Candidate]:
    """One channel adapter per account in the routing file, in file order."""
    out: dict[str, Candidate] = {}
    for name, account in loaded.config.accounts.items():
        try:
            channel = build_wechat(name, account, loaded.base_dir, session)
        except CredentialsError as exc:
            raise ConfigError(
                loaded.path, [f"{loaded.path}: accounts.{name}.credentials: {exc}"]
            ) from None
        out[name] = Candidate(channel=channel, livemode=account.livemode)
    return out


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    store: Store
    config: LoadedConfig
    accounts: dict[str, Candidate]
    metrics: Metrics = field(default_factory=Metrics)

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

    def callback_url(self, account: str) -> str:
        return f"{self.settings.base_url}/v1/notify/{account}"
