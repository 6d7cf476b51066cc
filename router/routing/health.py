"""Channel health and circuit breakers, shared by every router process through Redis.

Per channel account: a sliding window of calls (success, channel-caused failure, latency) in
time buckets, and a breaker:

    closed ──(failure rate ≥ threshold over ≥ min_calls, or a run of hard failures)──> open
    open ──(open_s, doubling on every trip up to max_open_s, plus up to 20% jitter)──> half_open
    (after a probe the channel refused at once, within the latency SLO: open_s again)
    half_open ──(close_after probe successes)──> closed      half_open ──(a probe fails)──> open

Half-open admits at most `half_open_probes` calls at once across all processes together.
Operators can force an account open or closed. Every transition is one Lua script, run by
`router.store.breakers` (which holds all of the Redis side); time comes from the injectable
clock, and the jitter from an injectable random source, so the state machine is tested
without sleeping.

Only failures the channel caused count: a buyer's decline or our bad request is `neutral`.

A plain success (closed breaker, no probe) is what almost every create records, all on the
one account priority routing picks: writing each at once would make that account's slot the
hottest in Redis. So each process tallies them per account and window bucket and `flush`es
the tally every `health.flush_s` (`run`, started with the app), one round trip for every
account. Everything else (failures, neutral outcomes, probes) is written at once, and carries
the account's tally with it, so a trip decision counts every success this process has seen.
The cost: a process that dies loses at most `flush_s` of successes, and health scores and
window counts (`snapshot`, `/admin/channels`) lag by up to `flush_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from router.clock import Clock
from router.ids import new_id
from router.outage import StoreOutage
from router.routing.window import call_fields
from router.store.batch import Batch
from router.store.breakers import BreakerStore, Successes, TripRule
from router.store.cache import TTLCache
from router.store.errors import STORE_UNAVAILABLE

log = logging.getLogger("payrouter")

Outcome = Literal["ok", "fail", "neutral"]
Window = tuple[tuple[int, dict[str, int]], ...]
"""An account's window buckets as read: (bucket number, fields), current first."""
_Raw = tuple[dict[str, str], tuple[int, int, int], Window]
"""An account's breaker hash as stored, its window totals (ok, fail, latency) and buckets."""
BreakerState = Literal["closed", "open", "half_open", "forced_open", "forced_closed"]


class HealthSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    window_s: Annotated[int, Field(ge=5, le=3600)] = 60
    buckets: Annotated[int, Field(ge=2, le=60)] = 12
    latency_slo_ms: Annotated[int, Field(ge=1)] = 2000
    """Calls slower than this on average lower the health score proportionally."""
    flush_s: Annotated[float, Field(gt=0, le=5)] = 0.25
    """How often each process writes the successes it has tallied (see the module's doc)."""


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
    last_resort: Annotated[int, Field(ge=0, le=5)] = 1
    """When every other candidate failed, try this many accounts whose breaker is open (best
    first) before giving up; 0: never."""


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
    window: Window = ()
    """The window's buckets with every field (`router.routing.window`), for `adaptive`."""
    read_ms: int = 0
    """When this view was derived (the clock's ms)."""

    @property
    def admits_without_asking(self) -> bool:
        """Closed (or forced closed): a call needs no trip to Redis first."""
        return self.state in ("closed", "forced_closed")


@dataclass(frozen=True)
class Admission:
    admitted: bool
    state: str
    probe_id: str


@dataclass
class _Tally:
    """One account's plain successes not yet written: bucket -> field increments."""

    buckets: dict[int, dict[str, int]] = field(default_factory=dict)
    last_ms: int = 0

    def add(self, bucket: int, fields: Mapping[str, int], at_ms: int) -> None:
        found = self.buckets.setdefault(bucket, {})
        for name, value in fields.items():
            found[name] = found.get(name, 0) + value
        self.last_ms = max(self.last_ms, at_ms)

    def successes(self, oldest: int) -> Successes:
        """The tally as the store takes it, without buckets older than `oldest`."""
        kept = {b: dict(fields) for b, fields in self.buckets.items() if b >= oldest}
        return Successes(kept, self.last_ms)


class Breakers:
    """The breaker state machine and health windows of every account (`router.store.breakers`
    keeps them)."""

    def __init__(
        self,
        store: BreakerStore,
        clock: Clock,
        settings: Callable[[], tuple[HealthSettings, BreakerSettings]],
        rng: Callable[[], float] = random.random,
        cache_s: float = 0.0,
    ) -> None:
        self._store = store
        self._clock = clock
        self._settings = settings
        self._rng = rng
        self._cache: TTLCache[str, _Raw] = TTLCache(cache_s, clock)
        """Raw breaker hashes read recently. States are derived from them with the clock at
        each use; anything this process records or forces drops its account's entry."""
        self._reads: dict[str, asyncio.Future[dict[str, _Raw]]] = {}
        """Reads under way, by account (see `_read`)."""
        self._generations: dict[str, int] = {}
        """Changes this process made per account, so a read that began before one is not
        cached after it."""
        self._tallies: dict[str, _Tally] = {}
        """Plain successes recorded here and not yet written, by account."""
        self._in_flight: dict[str, dict[int, float]] = {}
        """Creates this process has under way, by account: token -> when they began."""
        self._tokens = 0

    def call_started(self, account: str) -> int:
        """A create to `account` began; pass the token to `call_ended`."""
        self._tokens += 1
        self._in_flight.setdefault(account, {})[self._tokens] = self._clock.monotonic()
        return self._tokens

    def call_ended(self, account: str, token: int) -> None:
        """The create `call_started` returned `token` for has ended, however it ended."""
        self._in_flight.get(account, {}).pop(token, None)

    def outraced(self, account: str, token: int) -> None:
        """Another account answered a hedge of this create first: it counts as slow while it
        is under way (`slow_in_flight`), whatever the threshold."""
        if token in self._in_flight.get(account, {}):
            self._in_flight[account][token] = float("-inf")

    def slow_in_flight(self, account: str, threshold_ms: float) -> int:
        """This process's creates to `account` under way for longer than `threshold_ms` (or
        outraced by a hedge): a slow channel shows in them before any of its slow calls has
        ended."""
        since = self._clock.monotonic() - threshold_ms / 1000
        return sum(1 for began in self._in_flight.get(account, {}).values() if began < since)

    def settings(self) -> tuple[HealthSettings, BreakerSettings]:
        """The health and breaker settings in force."""
        return self._settings()

    def _buckets(self, now_ms: int) -> list[int]:
        """The window's buckets at `now_ms`, current first."""
        health, _ = self._settings()
        size = health.window_s * 1000 // health.buckets
        current = now_ms // size
        return [current - i for i in range(health.buckets)]

    async def snapshot(self, accounts: Sequence[str]) -> dict[str, AccountHealth]:
        """Every account's breaker and window totals, in one round trip (or none, when this
        process read them within `cache_s`)."""
        found = {account: self._cache.get(account) for account in accounts}
        missing = [account for account, seen in found.items() if seen is None]
        if missing:
            found.update(await self._read(missing))
        now_ms = self._clock.now_ms()
        return {
            account: self._view(account, *(found[account] or ({}, (0, 0, 0), ())), now_ms)
            for account in accounts
        }

    async def _read(self, accounts: list[str]) -> dict[str, _Raw]:
        """The accounts' raw state from Redis. An account another snapshot of this process is
        reading already joins that read: when the cache runs out, every request in flight
        misses it at once, and would otherwise each read the same account's slot."""
        tasks = {account: self._reads.get(account) for account in accounts}
        mine = [account for account, task in tasks.items() if task is None]
        if mine:
            generations = {account: self._generations.get(account, 0) for account in mine}
            task = asyncio.ensure_future(self._fetch(generations))
            task.add_done_callback(partial(self._read_done, mine))
            for account in mine:
                self._reads[account] = tasks[account] = task
        out: dict[str, _Raw] = {}
        for reading in {id(t): t for t in tasks.values() if t is not None}.values():
            # Shielded: a request cancelled while it waits leaves the read to the others.
            out.update(await asyncio.shield(reading))
        return {account: out[account] for account in accounts}

    async def _fetch(self, generations: Mapping[str, int]) -> dict[str, _Raw]:
        buckets = self._buckets(self._clock.now_ms())
        read = await self._store.read({account: buckets for account in generations})
        out: dict[str, _Raw] = {}
        for account, generation in generations.items():
            found = read[account].buckets
            totals = tuple(sum(b.get(name, 0) for b in found) for name in ("ok", "fail", "lat"))
            window = tuple((n, b) for n, b in zip(buckets, found, strict=True) if b)
            out[account] = (read[account].state, (totals[0], totals[1], totals[2]), window)
            # A change this process made while the read was under way may be missing from it.
            if self._generations.get(account, 0) == generation:
                self._cache.put(account, out[account])
        return out

    def _read_done(self, accounts: list[str], task: asyncio.Future[dict[str, _Raw]]) -> None:
        for account in accounts:
            if self._reads.get(account) is task:
                del self._reads[account]
        if not task.cancelled():
            task.exception()  # its awaiters have it; nothing to report twice

    def _forget(self, account: str) -> None:
        """This process changed `account`: its next snapshot reads it afresh."""
        self._cache.drop(account)
        self._reads.pop(account, None)
        self._generations[account] = self._generations.get(account, 0) + 1

    def _view(
        self,
        account: str,
        raw: Mapping[str, str],
        totals: tuple[int, int, int],
        window: Window,
        now_ms: int,
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
            window=window,
            read_ms=now_ms,
        )

    async def admit(self, account: str) -> Admission:
        """Ask to call `account` now (needed unless its snapshot said closed)."""
        _, breaker = self._settings()
        admitted, state, probe_id = await self._store.admit(
            account,
            self._clock.now_ms(),
            new_id("probe", 12),
            breaker.half_open_probes,
            int(breaker.probe_timeout_s * 1000),
        )
        return Admission(admitted, state, probe_id)

    async def record(
        self,
        account: str,
        outcome: Outcome,
        latency_ms: int,
        probe_id: str = "",
        dim: str | None = None,
        *,
        refused: bool = False,
    ) -> str:
        """Record one call's outcome; returns the breaker state after it (for a plain
        success, which is only tallied, the state this process last read). `dim`: the
        payment's dimension (`router.routing.window.dimension`), counted for `adaptive`.
        `refused`: a failure where the channel certainly did nothing (unreachable, 503,
        429); answered within the latency SLO, a failed probe of that kind opens the
        breaker for `open_s` again instead of doubling the span."""
        batch = self._store.batch()
        index = self.queue_record(
            batch, account, outcome, latency_ms, probe_id, dim, refused=refused
        )
        if index is None:
            cached = self._cache.get(account)
            if cached is None:
                return "closed"
            return self._view(account, *cached, self._clock.now_ms()).state
        return self._store.record_result((await batch.execute())[index])

    def queue_record(
        self,
        batch: Batch,
        account: str,
        outcome: Outcome,
        latency_ms: int,
        probe_id: str = "",
        dim: str | None = None,
        *,
        refused: bool = False,
    ) -> int | None:
        """`record`, queued in a batch with other writes: the index of the breaker's new
        state in the batch's results, or None for a plain success, which is tallied here
        until the next `flush` and queues nothing."""
        health, breaker = self._settings()
        now_ms = self._clock.now_ms()
        buckets = self._buckets(now_ms)
        extra = call_fields(outcome, latency_ms, dim)
        if outcome == "ok" and not probe_id:
            fields = {"ok": 1, "lat": max(0, latency_ms)} | extra
            self._tallies.setdefault(account, _Tally()).add(buckets[0], fields, now_ms)
            return None
        # What may change the breaker's state is seen by this process's next decision.
        self._forget(account)
        tally = self._tallies.pop(account, None)
        return self._store.queue_record(
            batch,
            account,
            buckets,
            now_ms=now_ms,
            outcome=outcome,
            latency_ms=latency_ms,
            probe_id=probe_id,
            rule=TripRule(
                bucket_ttl_s=health.window_s * 2,
                min_calls=breaker.min_calls,
                failure_rate=breaker.failure_rate,
                consecutive_failures=breaker.consecutive_failures,
                open_ms=int(breaker.open_s * 1000),
                max_open_ms=int(breaker.max_open_s * 1000),
                close_after=breaker.close_after,
            ),
            jitter=self._rng(),
            grow=not (refused and latency_ms <= health.latency_slo_ms),
            pending=tally.successes(buckets[-1]) if tally is not None else None,
            extra=extra,
        )

    async def flush(self) -> int:
        """Write every account's tallied successes in one round trip; returns how many
        accounts had some. On an error the tally is kept for the next flush."""
        if not self._tallies:
            return 0
        taken, self._tallies = self._tallies, {}
        health, _ = self._settings()
        oldest = self._buckets(self._clock.now_ms())[-1]
        batch = self._store.batch()
        written = 0
        for account, tally in taken.items():
            successes = tally.successes(oldest)
            if successes.buckets:
                self._store.queue_flush(batch, account, successes, health.window_s * 2)
                written += 1
        if not written:
            return 0
        try:
            await batch.execute()
        except BaseException:
            for account, tally in taken.items():
                kept = self._tallies.setdefault(account, _Tally())
                for bucket, fields in tally.buckets.items():
                    kept.add(bucket, fields, tally.last_ms)
            raise
        return written

    async def run(self, stop: asyncio.Event) -> None:
        """Flush every `health.flush_s` until `stop` is set, then once more."""
        outage = StoreOutage(log, "breaker flush", self._clock)
        while True:
            health, _ = self._settings()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=health.flush_s)
            try:
                await self.flush()
                outage.recovered()
            except STORE_UNAVAILABLE as exc:
                # The tally is kept and written by a later flush.
                outage.failed(exc)
            except Exception:
                log.exception("breaker flush failed; the tally is kept for the next one")
            if stop.is_set():
                return

    async def force(self, account: str, forced: Literal["open", "closed"] | None) -> None:
        """An operator's override; None clears it."""
        self._forget(account)
        await self._store.override(account, forced or "", self._clock.now_ms())
