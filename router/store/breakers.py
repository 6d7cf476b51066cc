"""Breakers and health windows in Redis: the keys, the scripts and the round trips.

What the numbers mean (which buckets make a window, when a breaker counts as half-open, how
a health score is derived) is `router.routing.health`'s; this module only reads and writes.
A window bucket is named by its number (time divided by the bucket size), so the caller
chooses which buckets make up the window. A bucket is a hash: `ok`, `fail` and `lat` (summed
latency, ms) feed the breaker's trip rule and the `score` strategy; any other field is a count
the caller chose to keep beside them (the `adaptive` strategy's latency histogram and counts
per dimension), added in the same scripts and read back whole.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import redis.asyncio as aioredis

from router.store import keys
from router.store.batch import Batch
from router.store.codec import mapping, text
from router.store.scripts import BREAKER_ADMIT, BREAKER_FLUSH, BREAKER_OVERRIDE, BREAKER_RECORD

Bucket = dict[str, int]
"""One window bucket's fields: `ok`, `fail`, `lat` (summed latency, ms) and the caller's own."""


@dataclass(frozen=True)
class Successes:
    """Plain successes a process has tallied but not yet written: per window bucket (by
    number) the increments of its fields (`ok` and `lat` at least), and when the latest
    happened."""

    buckets: Mapping[int, Mapping[str, int]]
    last_ms: int


@dataclass(frozen=True)
class BreakerRead:
    """An account's breaker hash as stored, and its window buckets in the order asked."""

    state: dict[str, str]
    buckets: list[Bucket]


def _pairs(fields: Mapping[str, int]) -> list[str | int]:
    """A bucket's increments as the scripts take them: how many, then field, value, ..."""
    kept = [(name, value) for name, value in fields.items() if value]
    return [len(kept), *(part for pair in kept for part in pair)]


@dataclass(frozen=True)
class TripRule:
    """What the record script needs to move a breaker (see `scripts.BREAKER_RECORD`)."""

    bucket_ttl_s: int
    min_calls: int
    failure_rate: float
    consecutive_failures: int
    open_ms: int
    max_open_ms: int
    close_after: int


class BreakerStore:
    """Every account's breaker and health window, shared by every router process."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._admit = redis.register_script(BREAKER_ADMIT)
        self._record = redis.register_script(BREAKER_RECORD)
        self._flush = redis.register_script(BREAKER_FLUSH)
        self._override = redis.register_script(BREAKER_OVERRIDE)

    async def read(self, windows: Mapping[str, Sequence[int]]) -> dict[str, BreakerRead]:
        """Each account's breaker hash and the given buckets of its window, in one round
        trip."""
        pipe = self._redis.pipeline(transaction=False)
        for account, buckets in windows.items():
            pipe.hgetall(keys.breaker(account))
            for bucket in buckets:
                pipe.hgetall(keys.health_bucket(account, bucket))
        answers = iter(await pipe.execute())
        found: dict[str, BreakerRead] = {}
        for account, buckets in windows.items():
            state = mapping(next(answers))
            counts: list[Bucket] = []
            for _ in buckets:
                counts.append({name: int(value) for name, value in mapping(next(answers)).items()})
            found[account] = BreakerRead(state, counts)
        return found

    async def admit(
        self, account: str, now_ms: int, probe_id: str, max_probes: int, probe_timeout_ms: int
    ) -> tuple[bool, str, str]:
        """(admitted, state, the probe id taken or '') for a call to `account` now."""
        admitted, state, probe = await self._admit(
            keys=[keys.breaker(account), keys.breaker_probes(account)],
            args=[now_ms, probe_id, max_probes, probe_timeout_ms],
        )
        return bool(int(admitted)), text(state), text(probe)

    def queue_record(
        self,
        batch: Batch,
        account: str,
        buckets: Sequence[int],
        *,
        now_ms: int,
        outcome: Literal["ok", "fail", "neutral"],
        latency_ms: int,
        probe_id: str,
        rule: TripRule,
        jitter: float,
        grow: bool = True,
        pending: Successes | None = None,
        extra: Mapping[str, int] | None = None,
    ) -> int:
        """Queue one call's outcome into `buckets[0]` and the breaker's move; returns the
        index of the breaker's new state in the batch's results (see `record_result`).

        `pending`: this process's unflushed successes of the account, written first in the
        same script, so the breaker's move counts them. Those outside `buckets` are dropped.
        `extra`: the caller's own fields to add to `buckets[0]` for this call. `grow`: False
        when a failed probe was refused at once: the next open span is `open_ms` again.
        """
        folded: list[str | int] = [0]
        if pending is not None:
            folded = [pending.last_ms]
            for bucket in buckets:
                folded += _pairs(pending.buckets.get(bucket, {}))
        return batch.script(
            self._record,
            [
                keys.breaker(account),
                keys.breaker_probes(account),
                *(keys.health_bucket(account, bucket) for bucket in buckets),
            ],
            [
                now_ms,
                outcome,
                max(0, latency_ms),
                probe_id,
                rule.bucket_ttl_s,
                rule.min_calls,
                rule.failure_rate,
                rule.consecutive_failures,
                rule.open_ms,
                rule.max_open_ms,
                jitter,
                rule.close_after,
                1 if grow else 0,
                *_pairs(extra or {}),
                *folded,
            ],
        )

    def queue_flush(
        self, batch: Batch, account: str, successes: Successes, bucket_ttl_s: int
    ) -> int:
        """Queue the write of one account's tallied successes (`scripts.BREAKER_FLUSH`)."""
        buckets = sorted(successes.buckets, reverse=True)
        return batch.script(
            self._flush,
            [keys.breaker(account), *(keys.health_bucket(account, bucket) for bucket in buckets)],
            [
                bucket_ttl_s,
                successes.last_ms,
                *(part for bucket in buckets for part in _pairs(successes.buckets[bucket])),
            ],
        )

    def batch(self) -> Batch:
        """A batch of this store's writes, for `queue_record` outside a larger one."""
        return Batch(self._redis)

    @staticmethod
    def record_result(raw: object) -> str:
        """The breaker state a queued record returned."""
        return text(raw)

    async def override(self, account: str, forced: str, now_ms: int) -> None:
        """Set an operator's override (`open`, `closed`), or clear it with ''."""
        await self._override(
            keys=[keys.breaker(account), keys.breaker_probes(account)], args=[forced, now_ms]
        )
