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
from router.ids import new_id
from router.models import Refund
from router.store import keys
from router.store.batch import Batch
from router.store.codec import decode_fields, encode, mapping, text
from router.store.idempotency import IdempotencyKeyLost
from router.store.schedule import Schedule
from router.store.scripts import CREATE_REFUND, REFUND_TRANSITION

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


def decode(raw: Mapping[str, str]) -> StoredRefund:
    values = decode_fields(raw)
    internal = {name: values.pop(name, None) for name in INTERNAL_FIELDS}
    return StoredRefund(
        refund=Refund.model_validate(values),
        merchant_id=str(internal["merchant_id"]),
        created_ms=int(internal["created_ms"] or 0),
        refundable_before=(
            None if internal["refundable_before"] is None else int(internal["refundable_before"])
        ),
    )


class RefundStore:
    def __init__(self, redis: aioredis.Redis, clock: Clock) -> None:
        self._redis = redis
        self._clock = clock
        self._create = redis.register_script(CREATE_REFUND)
        self._transition = redis.register_script(REFUND_TRANSITION)

    async def create(
        self,
        stored: StoredRefund,
        requested: int | None,
        due_ms: int,
        idempotency: tuple[str, str] | None = None,
    ) -> RefundCreation:
        """Reserve the amount and write the refund, atomically; one round trip.

        One round trip, after `Schedule.queue_new`. With `idempotency` (the request's key and
        owner token) the refund is bound to that key's record in the same step;
        `IdempotencyKeyLost` if the record is no longer the caller's (nothing written).
        """
        r, mch = stored.refund, stored.merchant_id
        fields = r.model_dump(mode="json", exclude={"amount"}) | {
            "merchant_id": mch,
            "created_ms": stored.created_ms,
        }
        mrid = r.merchant_refund_id
        script_keys = [
            keys.payment(mch, r.payment),
            keys.refund(mch, r.id),
            keys.payment_refunds(mch, r.payment),
            keys.merchant_refund(mch, mrid or "-"),
        ]
        token = ""
        if idempotency is not None:
            idem_key, token = idempotency
            script_keys.append(keys.idempotency(mch, idem_key))
        batch = Batch(self._redis)
        Schedule.queue_new(batch, mch, r.id, due_ms)
        index = batch.script(
            self._create,
            script_keys,
            [
                r.id,
                requested or 0,
                stored.created_ms,
                "1" if mrid else "0",
                token,
                *encode(fields),
            ],
        )
        outcome, value = (await batch.execute())[index]
        if text(outcome) == "key_lost":
            raise IdempotencyKeyLost(r.id)
        return RefundCreation(text(outcome), text(value))  # type: ignore[arg-type]

    async def get(self, mch: str, re_id: str) -> StoredRefund | None:
        raw = mapping(await self._redis.hgetall(keys.refund(mch, re_id)))
        return decode(raw) if raw else None

    async def transition(
        self, stored: StoredRefund, status: str, fields: Mapping[str, Any]
    ) -> tuple[bool, str]:
        """Finish a pending refund (or update its fields while pending); finishing writes its
        `refund.<status>` event in the same step."""
        r, mch = stored.refund, stored.merchant_id
        evt_id, now_ms = new_id("evt"), self._clock.now_ms()
        applied, now = await self._transition(
            keys=[
                keys.refund(mch, r.id),
                keys.payment(mch, r.payment),
                keys.event(mch, evt_id),
                keys.events(mch),
                keys.outbox(mch),
            ],
            args=[status, evt_id, rfc3339(from_ms(now_ms)), now_ms, r.payment, *encode(fields)],
        )
        return bool(int(applied)), text(now)

    async def of_payment(
        self, mch: str, pay_id: str, *, limit: int, starting_after: StoredRefund | None
    ) -> tuple[list[StoredRefund], bool]:
        """A payment's refunds, newest first, after the cursor. Returns (page, has_more)."""
        index = keys.payment_refunds(mch, pay_id)
        ids = [text(m) for m in await self._redis.zrevrange(index, 0, -1)]
        if starting_after is not None:
            ids = (
                ids[ids.index(starting_after.refund.id) + 1 :]
                if starting_after.refund.id in ids
                else []
            )
        pipe = self._redis.pipeline(transaction=False)
        for re_id in ids[: limit + 1]:
            pipe.hgetall(keys.refund(mch, re_id))
        found = [decode(mapping(raw)) for raw in await pipe.execute() if raw]
        return found[:limit], len(found) > limit
