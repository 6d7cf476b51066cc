"""Idempotency records: the first answer to a key, replayed to every retry for 24 hours."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import redis.asyncio as aioredis

from router.clock import Clock
from router.store import keys
from router.store.batch import Batch
from router.store.scripts import IDEMPOTENCY_BEGIN, IDEMPOTENCY_FINISH, IDEMPOTENCY_RELEASE

RECORD_TTL_S = 25 * 3600
"""Kept at least 24 h, as the contract promises; the extra hour covers clock skew."""
LEASE_MS = 60_000
"""How long a running request owns its key before a retry may take over (a crashed process)."""


@dataclass(frozen=True)
class Begun:
    outcome: Literal["new", "mismatch", "in_flight", "replay"]
    status: int = 0
    body: str = ""


class IdempotencyStore:
    def __init__(self, redis: aioredis.Redis, clock: Clock) -> None:
        self._clock = clock
        self._begin = redis.register_script(IDEMPOTENCY_BEGIN)
        self._finish = redis.register_script(IDEMPOTENCY_FINISH)
        self._release = redis.register_script(IDEMPOTENCY_RELEASE)

    async def begin(self, mch: str, key: str, fingerprint: str, token: str) -> Begun:
        raw = await self._begin(
            keys=[keys.idempotency(mch, key)],
            args=[fingerprint, token, self._clock.now_ms(), LEASE_MS, RECORD_TTL_S],
        )
        outcome = str(raw[0])
        if outcome == "replay":
            return Begun("replay", int(raw[1]), str(raw[2]))
        if outcome in ("new", "mismatch", "in_flight"):
            return Begun(outcome)  # type: ignore[arg-type]
        raise RuntimeError(f"unexpected idempotency outcome {outcome!r}")

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
        await self._release(keys=[keys.idempotency(mch, key)], args=[token])
