"""The re-query schedule: which payments and refunds a background worker must look at, and
when.

Each partition has its own sorted set (`keys.schedule`), written by the same script that
creates the payment or refund, so there is never a payment the worker cannot find. A member
names what it is, whose, and which: `payment/mch_.../pay_...` or `refund/mch_.../re_...`, or
`abandoned/mch_.../pay_...`: orders a failover left behind at other accounts, to be closed
there (`StoredPayment.abandoned`), whatever becomes of the payment itself.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import redis.asyncio as aioredis

from router.store import keys
from router.store.batch import Batch
from router.store.codec import text
from router.store.scripts import CLAIM_DUE

Kind = Literal["payment", "refund", "abandoned"]


def member(kind: Kind, mch: str, object_id: str) -> str:
    return f"{kind}/{mch}/{object_id}"


def kind_of(object_id: str) -> Kind:
    """Refund ids are `re_...`; payment ids `pay_...`."""
    return "refund" if object_id.startswith("re_") else "payment"


class Due(NamedTuple):
    """A claimed entry: what, whose, and which payment or refund."""

    kind: Kind
    merchant_id: str
    object_id: str


def _due(raw: str) -> Due | None:
    kind, _, rest = raw.partition("/")
    mch, _, object_id = rest.partition("/")
    if kind not in ("payment", "refund", "abandoned") or not mch or not object_id:
        return None
    return Due(kind, mch, object_id)  # type: ignore[arg-type]


class Schedule:
    """Per-partition sorted sets of payments and refunds by due time, shared by every router
    process."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._claim = redis.register_script(CLAIM_DUE)

    async def put(self, mch: str, object_id: str, due_ms: int) -> None:
        key = keys.schedule(keys.partition_of(object_id))
        await self._redis.zadd(key, {member(kind_of(object_id), mch, object_id): due_ms})

    async def claim(self, now_ms: int, lease_ms: int, limit: int) -> list[Due]:
        """Take due entries from every partition in one round trip, about `limit` in all
        (`limit` spread over the partitions, at least one from each); each is hidden from
        other workers for `lease_ms`. Members that cannot be read leave the schedule."""
        each = max(1, -(-limit // keys.PARTITIONS))
        batch = Batch(self._redis)
        for partition in range(keys.PARTITIONS):
            batch.script(self._claim, [keys.schedule(partition)], [now_ms, lease_ms, each])
        out: list[Due] = []
        for partition, raw in enumerate(await batch.execute()):
            for entry in raw:
                due = _due(text(entry))
                if due is None:
                    await self._redis.zrem(keys.schedule(partition), entry)
                else:
                    out.append(due)
        return out

    async def done(self, mch: str, object_id: str) -> None:
        await self._redis.zrem(*self.entry(mch, object_id))

    async def put_abandoned(self, mch: str, pay_id: str, due_ms: int) -> None:
        """Schedule the closing of the orders a failover left behind for `pay_id`."""
        key = keys.schedule(keys.partition_of(pay_id))
        await self._redis.zadd(key, {member("abandoned", mch, pay_id): due_ms})

    async def done_abandoned(self, mch: str, pay_id: str) -> None:
        """Every order `put_abandoned` was scheduled for is settled."""
        key = keys.schedule(keys.partition_of(pay_id))
        await self._redis.zrem(key, member("abandoned", mch, pay_id))

    def queue_put(self, batch: Batch, mch: str, object_id: str, due_ms: int) -> None:
        key, entry = self.entry(mch, object_id)
        batch.pipe.zadd(key, {entry: due_ms})

    def queue_done(self, batch: Batch, mch: str, object_id: str) -> None:
        batch.pipe.zrem(*self.entry(mch, object_id))

    async def due_at(self, mch: str, object_id: str) -> int | None:
        score = await self._redis.zscore(*self.entry(mch, object_id))
        return None if score is None else int(score)

    @staticmethod
    def entry(mch: str, object_id: str) -> tuple[str, str]:
        """The schedule key and member of a payment or refund (create scripts write them)."""
        key = keys.schedule(keys.partition_of(object_id))
        return key, member(kind_of(object_id), mch, object_id)
