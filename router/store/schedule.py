"""The re-query schedule: which payments and refunds a background worker must look at, and
when.

One sorted set holds both, each member `mch/object_id`; what an entry is (`Due.kind`) is read
here, from the id's prefix, so no caller parses members. Entries written by any earlier
version have this same form.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import redis.asyncio as aioredis

from router.store import keys
from router.store.batch import Batch
from router.store.scripts import CLAIM_DUE


def member(mch: str, pay_id: str) -> str:
    return f"{mch}/{pay_id}"


class Due(NamedTuple):
    """A claimed entry: whose, and which payment or refund."""

    merchant_id: str
    object_id: str

    @property
    def kind(self) -> Literal["payment", "refund"]:
        # Refund ids are `new_id("re")`; payment ids never start so.
        return "refund" if self.object_id.startswith("re_") else "payment"


class Schedule:
    """A sorted set of `mch/pay_id` by due time, shared by every router process."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._claim = redis.register_script(CLAIM_DUE)

    async def put(self, mch: str, pay_id: str, due_ms: int) -> None:
        await self._redis.zadd(keys.payment_schedule(), {member(mch, pay_id): due_ms})

    async def claim(self, now_ms: int, lease_ms: int, limit: int) -> list[Due]:
        """Take up to `limit` due entries; each is hidden from other workers for `lease_ms`."""
        raw = await self._claim(keys=[keys.payment_schedule()], args=[now_ms, lease_ms, limit])
        out: list[Due] = []
        for entry in raw:
            mch, _, object_id = str(entry).partition("/")
            out.append(Due(mch, object_id))
        return out

    async def done(self, mch: str, pay_id: str) -> None:
        await self._redis.zrem(keys.payment_schedule(), member(mch, pay_id))

    @staticmethod
    def queue_new(batch: Batch, mch: str, object_id: str, due_ms: int) -> None:
        """What a new payment or refund gets before it is written: its owner pointer (for
        callbacks) and its schedule entry. Queued first, so a crash right after can leave
        only a pointer or an entry that leads nowhere, never an object the worker misses."""
        batch.pipe.set(keys.owner(object_id), mch)
        batch.pipe.zadd(keys.payment_schedule(), {member(mch, object_id): due_ms})

    def queue_put(self, batch: Batch, mch: str, object_id: str, due_ms: int) -> None:
        batch.pipe.zadd(keys.payment_schedule(), {member(mch, object_id): due_ms})

    def queue_done(self, batch: Batch, mch: str, object_id: str) -> None:
        batch.pipe.zrem(keys.payment_schedule(), member(mch, object_id))

    async def due_at(self, mch: str, pay_id: str) -> int | None:
        score = await self._redis.zscore(keys.payment_schedule(), member(mch, pay_id))
        return None if score is None else int(score)
