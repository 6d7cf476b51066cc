"""Refunds in Redis: one hash per refund; the payment's running totals move in the same script.

A payment hash carries `amount_refunded` (succeeded refunds, shown to merchants) and
`amount_reserved` (pending and succeeded refunds). Creating a refund raises `amount_reserved`
only if it stays within the payment's amount; a refund that fails gives its share back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import redis.asyncio as aioredis

from router.clock import Clock, from_ms, rfc3339
from router.ids import derived_id, new_id
from router.models import Refund
from router.store import keys
from router.store.batch import Batch
from router.store.codec import decode_fields, encode, mapping, text
from router.store.payments import VERSION, Replication
from router.store.schedule import Schedule
from router.store.scripts import CREATE_REFUND, DELETE_IF, REFUND_TRANSITION

INTERNAL_FIELDS = ("merchant_id", "created_ms", "refundable_before")


@dataclass(frozen=True)
class StoredRefund:
    refund: Refund
    merchant_id: str
    created_ms: int
    refundable_before: int | None = None
    """What was left to refund of the payment when this refund was made (None: not recorded,
    refunds made before it was)."""


@dataclass(frozen=True)
class RefundCreation:
    outcome: Literal["created", "exists", "not_refundable", "exceeds"]
    value: str
    """created: the amount; exists: the existing refund's id; not_refundable: the payment's
    status; exceeds: what is left to refund."""
    replicas: int | None = None
    """With `Replication`: the replicas that acknowledged the write (None: not asked)."""


def decode(raw: Mapping[str, str]) -> StoredRefund:
    values = decode_fields(raw)
    internal = {name: values.pop(name, None) for name in INTERNAL_FIELDS}
    values.pop(VERSION, None)
    return StoredRefund(
        refund=Refund.model_validate(values),
        merchant_id=str(internal["merchant_id"]),
        created_ms=int(internal["created_ms"] or 0),
        refundable_before=(
            None if internal["refundable_before"] is None else int(internal["refundable_before"])
        ),
    )


class RefundStore:
    def __init__(
        self, redis: aioredis.Redis, clock: Clock, replication: Replication | None = None
    ) -> None:
        self._redis = redis
        self._clock = clock
        self.replication = replication
        self._create = redis.register_script(CREATE_REFUND)
        self._transition = redis.register_script(REFUND_TRANSITION)
        self._unclaim = redis.register_script(DELETE_IF)

    @staticmethod
    def refund_id(
        mch: str, pay_id: str, merchant_refund_id: str | None, idempotency_key: str | None
    ) -> str:
        """A new refund's id, in its payment's partition: derived from the merchant's name for
        it, else from the Idempotency-Key it is made under (with the payment: a key may be
        used again for another payment once its record is gone), else random."""
        partition = keys.partition_of(pay_id)
        if merchant_refund_id is not None:
            return derived_id("re", partition, "mrid", mch, merchant_refund_id)
        if idempotency_key is not None:
            return derived_id("re", partition, "key", mch, pay_id, idempotency_key)
        return new_id("re", partition=partition)

    async def create(
        self, stored: StoredRefund, requested: int | None, due_ms: int
    ) -> RefundCreation:
        """Reserve the amount and write the refund, due for its first re-query at `due_ms`,
        atomically: one script in the payment's partition. A refund whose id is already
        written is `exists` (ids derived from a merchant_refund_id or an Idempotency-Key meet
        here: `router.ids.derived_id`)."""
        r, mch = stored.refund, stored.merchant_id
        if keys.partition_of(r.id) != keys.partition_of(r.payment):
            raise ValueError(f"refund id {r.id} is not from RefundStore.refund_id")
        fields = r.model_dump(mode="json", exclude={"amount"}) | {
            "merchant_id": mch,
            "created_ms": stored.created_ms,
        }
        schedule_key, entry = Schedule.entry(mch, r.id)
        batch = Batch(self._redis)
        index = batch.script(
            self._create,
            [
                keys.payment(r.payment),
                keys.refund(r.id),
                keys.payment_refunds(r.payment),
                schedule_key,
                keys.changes(keys.partition_of(r.id)),
            ],
            [r.id, requested or 0, stored.created_ms, due_ms, entry, r.payment, *encode(fields)],
        )
        waited = None
        if self.replication is not None:
            rep = self.replication
            waited = batch.wait(keys.refund(r.id), rep.replicas, rep.timeout_ms)
        results = await batch.execute()
        outcome, value = results[index]
        replicas = None if waited is None else int(results[waited])
        return RefundCreation(text(outcome), text(value), replicas)  # type: ignore[arg-type]

    async def claim_merchant_refund_id(self, mch: str, merchant_refund_id: str, pay_id: str) -> str:
        """Claim a merchant_refund_id for a payment, before its refund is written (in
        another slot). Returns the payment it is claimed for: `pay_id`, or the payment an
        earlier refund request claimed it for."""
        claimed = await self._redis.set(
            keys.merchant_refund_claim(mch, merchant_refund_id), pay_id, nx=True, get=True
        )
        return pay_id if claimed is None else text(claimed)

    async def unclaim_merchant_refund_id(
        self, mch: str, merchant_refund_id: str, pay_id: str
    ) -> None:
        """Give the id back when no refund was written for it (refused: nothing to refund)."""
        await self._unclaim(
            keys=[keys.merchant_refund_claim(mch, merchant_refund_id)], args=[pay_id]
        )

    async def get(self, mch: str, re_id: str) -> StoredRefund | None:
        """The merchant's refund; None if there is none, or it is another merchant's."""
        found = await self.find(re_id)
        return found if found is not None and found.merchant_id == mch else None

    async def find(self, re_id: str) -> StoredRefund | None:
        """The refund, whoever's it is (for channel callbacks)."""
        raw = mapping(await self._redis.hgetall(keys.refund(re_id)))
        return decode(raw) if raw else None

    async def transition(
        self, stored: StoredRefund, status: str, fields: Mapping[str, Any]
    ) -> tuple[bool, str]:
        """Finish a pending refund (or update its fields while pending); finishing writes its
        `refund.<status>` event in the same step."""
        r, mch = stored.refund, stored.merchant_id
        partition = keys.partition_of(r.id)
        evt_id, now_ms = new_id("evt", partition=partition), self._clock.now_ms()
        applied, now = await self._transition(
            keys=[
                keys.refund(r.id),
                keys.payment(r.payment),
                keys.event(evt_id),
                keys.events(partition, mch),
                keys.outbox(partition),
                keys.changes(partition),
            ],
            args=[
                status,
                evt_id,
                rfc3339(from_ms(now_ms)),
                now_ms,
                r.payment,
                mch,
                *encode(fields),
            ],
        )
        return bool(int(applied)), text(now)

    async def all_of_payment(self, mch: str, pay_id: str) -> tuple[list[str], list[StoredRefund]]:
        """Every refund of the payment Redis names (its index, newest first: ids of refunds
        that left Redis stay in it) and those it still holds, the merchant's, in that order."""
        ids = [text(m) for m in await self._redis.zrevrange(keys.payment_refunds(pay_id), 0, -1)]
        pipe = self._redis.pipeline(transaction=False)
        for re_id in ids:
            pipe.hgetall(keys.refund(re_id))
        found = [decode(mapping(raw)) for raw in await pipe.execute() if raw] if ids else []
        return ids, [r for r in found if r.merchant_id == mch]

    async def of_payment(
        self, mch: str, pay_id: str, *, limit: int, starting_after: StoredRefund | None
    ) -> tuple[list[StoredRefund], bool]:
        """A payment's refunds, newest first, after the cursor. Returns (page, has_more)."""
        index = keys.payment_refunds(pay_id)
        ids = [text(m) for m in await self._redis.zrevrange(index, 0, -1)]
        if starting_after is not None:
            ids = (
                ids[ids.index(starting_after.refund.id) + 1 :]
                if starting_after.refund.id in ids
                else []
            )
        pipe = self._redis.pipeline(transaction=False)
        for re_id in ids[: limit + 1]:
            pipe.hgetall(keys.refund(re_id))
        found = [decode(mapping(raw)) for raw in await pipe.execute() if raw]
        found = [r for r in found if r.merchant_id == mch]
        return found[:limit], len(found) > limit
