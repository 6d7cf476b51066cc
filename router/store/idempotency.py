"""Idempotency records: the first final answer to a key, replayed to every retry for 24 hours.

A record is `running` while a request owns it under a lease that the request renews while it
runs, then `done` with the answer to replay. The record lives in the partition its key is
spread to; what a create makes under the key lives in its own partition and names the key
there (`CREATE_PAYMENT` records it with the order, a refund's id is derived from it), so a
request that took over the key of a crashed one meets what that one made where it would
make its own, and answers about it (`router.payments.service`, `router.payments.refunds`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import redis.asyncio as aioredis

from router.clock import Clock
from router.store import keys
from router.store.batch import Batch
from router.store.scripts import (
    IDEMPOTENCY_BEGIN,
    IDEMPOTENCY_FINISH,
    IDEMPOTENCY_RELEASE,
    IDEMPOTENCY_RENEW,
)

RECORD_TTL_S = 25 * 3600
"""Kept at least 24 h, as the contract promises; the extra hour covers clock skew."""
DEFAULT_LEASE_MS = 10_000
"""How long a request owns its key unless renewed (`Settings.idempotency_lease_s`)."""


class IdempotencyKeyLost(Exception):
    """The request no longer owns its key: another attempt took it over (this one stalled
    past its lease); that attempt answers for the key."""


@dataclass(frozen=True)
class Begun:
    """What `IdempotencyStore.begin` found.

    - `new`: the caller owns the key and runs the request (a first attempt, or one that took
      over from an attempt that died);
    - `in_flight`: another attempt owns it for `retry_after_s` more seconds;
    - `replay`: the remembered answer (`status`, `body`);
    - `mismatch`: the key was used with another request.
    """

    outcome: Literal["new", "mismatch", "in_flight", "replay"]
    status: int = 0
    body: str = ""
    retry_after_s: int = 0


class IdempotencyStore:
    def __init__(self, redis: aioredis.Redis, clock: Clock) -> None:
        self._clock = clock
        self._begin = redis.register_script(IDEMPOTENCY_BEGIN)
        self._renew = redis.register_script(IDEMPOTENCY_RENEW)
        self._finish = redis.register_script(IDEMPOTENCY_FINISH)
        self._release = redis.register_script(IDEMPOTENCY_RELEASE)

    async def begin(
        self, mch: str, key: str, fingerprint: str, token: str, lease_ms: int = DEFAULT_LEASE_MS
    ) -> Begun:
        now_ms = self._clock.now_ms()
        raw = await self._begin(
            keys=[keys.idempotency(mch, key)],
            args=[fingerprint, token, now_ms, lease_ms, RECORD_TTL_S],
        )
        return _begun(raw, now_ms)

    def queue_begin(
        self,
        batch: Batch,
        mch: str,
        key: str,
        fingerprint: str,
        token: str,
        lease_ms: int = DEFAULT_LEASE_MS,
    ) -> Callable[[list[Any]], Begun]:
        """`begin` queued in `batch` (another call shares its round trip); returns what reads
        its outcome from the batch's results."""
        now_ms = self._clock.now_ms()
        index = batch.script(
            self._begin,
            [keys.idempotency(mch, key)],
            [fingerprint, token, now_ms, lease_ms, RECORD_TTL_S],
        )
        return lambda results: _begun(results[index], now_ms)

    async def renew(self, mch: str, key: str, token: str, lease_ms: int = DEFAULT_LEASE_MS) -> bool:
        """Extend the caller's lease; False once the key is no longer the caller's."""
        owned = await self._renew(
            keys=[keys.idempotency(mch, key)], args=[token, self._clock.now_ms() + lease_ms]
        )
        return bool(int(owned))

    async def finish(self, mch: str, key: str, token: str, status: int, body: str) -> None:
        await self._finish(
            keys=[keys.idempotency(mch, key)], args=[token, status, body, RECORD_TTL_S]
        )

    def queue_finish(
        self, batch: Batch, mch: str, key: str, token: str, status: int, body: str
    ) -> None:
        batch.script(
            self._finish, [keys.idempotency(mch, key)], [token, status, body, RECORD_TTL_S]
        )

    async def release(self, mch: str, key: str, token: str) -> None:
        """Give the key up without an answer to remember, so a retry runs again (and meets
        whatever this request made under the key)."""
        await self._release(keys=[keys.idempotency(mch, key)], args=[token])


def _begun(raw: Any, now_ms: int) -> Begun:
    outcome = str(raw[0])
    if outcome == "replay":
        return Begun("replay", int(raw[1]), str(raw[2]))
    if outcome == "in_flight":
        wait = math.ceil((int(raw[1]) - now_ms) / 1000)
        return Begun("in_flight", retry_after_s=max(wait, 1))
    if outcome in ("new", "mismatch"):
        return Begun(outcome)  # type: ignore[arg-type]
    raise RuntimeError(f"unexpected idempotency outcome {outcome!r}")
