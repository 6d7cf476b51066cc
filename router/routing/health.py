"""Channel health and circuit breakers, shared by every router process through Redis.

Per channel account: a sliding window of calls (success, channel-caused failure, latency) in
time buckets, and a breaker:

    closed ──(failure rate ≥ threshold over ≥ min_calls, or a run of hard failures)──> open
    open ──(open_s, doubling on every trip up to max_open_s, plus up to 20% jitter)──> half_open
    half_open ──(close_after probe successes)──> closed      half_open ──(a probe fails)──> open

Half-open admits at most `half_open_probes` calls at once across all processes together.
Operators can force an account open or closed. Every transition is one Lua script in
`router.store.scripts`; time comes from the injectable clock, and the jitter from an injectable
random source, so the state machine is tested without sleeping.

Only failures the channel caused count: a buyer's decline or our bad request is `neutral`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field

from router.clock import Clock
from router.ids import new_id
from router.store import keys
from router.store.batch import Batch
from router.store.cache import TTLCache
from router.store.codec import mapping, text
from router.store.scripts import BREAKER_ADMIT, BREAKER_OVERRIDE, BREAKER_RECORD

Outcome = Literal["ok", "fail", "neutral"]
BreakerState = Literal["closed", "open", "half_open", "forced_open", "forced_closed"]


class HealthSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    window_s: Annotated[int, Field(ge=5, le=3600)] = 60
    buckets: Annotated[int, Field(ge=2, le=60)] = 12
    latency_slo_ms: Annotated[int, Field(ge=1)] = 2000
    """Calls slower than this on average lower the health score proportionally."""


class BreakerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    failure_rate: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5
    min_calls: Annotated[int, Field(ge=1)] = 10
    consecutive_failures: Annotated[int, Field(ge=1)] = 5
    open_s: Annotated[float, Field(gt=0)] = 10.0
    max_open_s: Annotated[float, Field(gt=0)] = 300.0
    half_open_probes: Annotated[int, Field(ge=1)] = 2
    close_after: Annotated[int, Field(ge=1)] = 3
    probe_timeout_s: Annotated[float, Field(gt=0)] = 30.0


@dataclass(frozen=True)
class AccountHealth:
    """One account as routing and `/admin/channels` see it."""

    account: str
    state: BreakerState
    calls: int
    failures: int
    avg_latency_ms: float
    score: float
    """0..1: smoothed success rate, lowered when average latency exceeds the SLO."""
    open_until_ms: int | None
    forced: str | None

    @property
    def admits_without_asking(self) -> bool:
        """Closed (or forced closed): a call needs no trip to Redis first."""
        return self.state in ("closed", "forced_closed")


@dataclass(frozen=True)
class Admission:
    admitted: bool
    state: str
    probe_id: str


class Breakers:
    def __init__(
        self,
        redis: aioredis.Redis,
        clock: Clock,
        settings: Callable[[], tuple[HealthSettings, BreakerSettings]],
        rng: Callable[[], float] = random.random,
        cache_s: float = 0.0,
    ) -> None:
        self._redis = redis
        self._clock = clock
        self._settings = settings
        self._rng = rng
        self._cache: TTLCache[str, tuple[dict[str, str], tuple[int, int, int]]] = TTLCache(cache_s)
        """Raw breaker hashes read recently. States are derived from them with the clock at
        each use; anything this process records or forces drops its account's entry."""
        self._admit = redis.register_script(BREAKER_ADMIT)
        self._record = redis.register_script(BREAKER_RECORD)
        self._override = redis.register_script(BREAKER_OVERRIDE)

    def _buckets(self, account: str, now_ms: int) -> list[str]:
        health, _ = self._settings()
        size = health.window_s * 1000 // health.buckets
        current = now_ms // size
        return [keys.health_bucket(account, current - i) for i in range(health.buckets)]

    async def snapshot(self, accounts: Sequence[str]) -> dict[str, AccountHealth]:
        """Every account's breaker and window totals, in one round trip (or none, when this
        process read them within `cache_s`)."""
        found = {account: self._cache.get(account) for account in accounts}
        missing = [account for account, seen in found.items() if seen is None]
        if missing:
            now_ms = self._clock.now_ms()
            pipe = self._redis.pipeline(transaction=False)
            for account in missing:
                pipe.hgetall(keys.breaker(account))
                for bucket in self._buckets(account, now_ms):
                    pipe.hmget(bucket, "ok", "fail", "lat")
            answers = iter(await pipe.execute())
            for account in missing:
                state = mapping(next(answers))
                totals = [0, 0, 0]
                for _ in range(self._settings()[0].buckets):
                    for i, value in enumerate(next(answers)):
                        totals[i] += int(value or 0)
                found[account] = self._cache.put(
                    account, (state, (totals[0], totals[1], totals[2]))
                )
        now_ms = self._clock.now_ms()
        return {
            account: self._view(account, *(found[account] or ({}, (0, 0, 0))), now_ms)
            for account in accounts
        }

    def _view(
        self, account: str, raw: Mapping[str, str], totals: tuple[int, int, int], now_ms: int
    ) -> AccountHealth:
        health, _ = self._settings()
        forced = raw.get("forced") or None
        state = raw.get("state", "closed")
        open_until = int(raw["open_until"]) if raw.get("open_until") else None
        if forced:
            state = f"forced_{forced}"
        elif state == "open" and open_until is not None and now_ms >= open_until:
            state = "half_open"
        ok, fails, lat = totals
        calls = ok + fails
        avg = lat / calls if calls else 0.0
        success = (calls - fails + 1) / (calls + 2)
        slowness = min(1.0, health.latency_slo_ms / avg) if avg > 0 else 1.0
        return AccountHealth(
            account=account,
            state=state,  # type: ignore[arg-type]
            calls=calls,
            failures=fails,
            avg_latency_ms=round(avg, 1),
            score=round(success * slowness, 4),
            open_until_ms=open_until if state == "open" else None,
            forced=forced,
        )

    async def admit(self, account: str) -> Admission:
        """Ask to call `account` now (needed unless its snapshot said closed)."""
        _, breaker = self._settings()
        probe = new_id("probe", 12)
        admitted, state, probe_id = await self._admit(
            keys=[keys.breaker(account), keys.breaker_probes(account)],
            args=[
                self._clock.now_ms(),
                probe,
                breaker.half_open_probes,
                int(breaker.probe_timeout_s * 1000),
            ],
        )
        return Admission(bool(int(admitted)), text(state), text(probe_id))

    async def record(
        self, account: str, outcome: Outcome, latency_ms: int, probe_id: str = ""
    ) -> str:
        """Record one call's outcome; returns the breaker state after it."""
        batch = Batch(self._redis)
        index = self.queue_record(batch, account, outcome, latency_ms, probe_id)
        return text((await batch.execute())[index])

    def queue_record(
        self, batch: Batch, account: str, outcome: Outcome, latency_ms: int, probe_id: str = ""
    ) -> int:
        """`record`, queued in a batch with other writes."""
        health, breaker = self._settings()
        now_ms = self._clock.now_ms()
        if outcome != "ok" or probe_id:
            # What may change the breaker's state is seen by this process's next decision.
            self._cache.drop(account)
        return batch.script(
            self._record,
            [keys.breaker(account), keys.breaker_probes(account), *self._buckets(account, now_ms)],
            [
                now_ms,
                outcome,
                max(0, latency_ms),
                probe_id,
                health.window_s * 2,
                breaker.min_calls,
                breaker.failure_rate,
                breaker.consecutive_failures,
                int(breaker.open_s * 1000),
                int(breaker.max_open_s * 1000),
                self._rng(),
                breaker.close_after,
            ],
        )

    async def force(self, account: str, forced: Literal["open", "closed"] | None) -> None:
        """An operator's override; None clears it."""
        self._cache.drop(account)
        await self._override(
            keys=[keys.breaker(account), keys.breaker_probes(account)],
            args=[forced or "", self._clock.now_ms()],
        )
