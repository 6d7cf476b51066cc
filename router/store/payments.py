"""Payments in Redis: one hash per payment, moved between statuses only by Lua scripts.

Every field of the hash holds JSON (see `router.store.codec`). Beside the public fields the hash
keeps `merchant_id`, `created_ms`, `client_ip` and `payer_id` (what the channel needs again on
close or query, never shown to merchants) and `amount_reserved`, the sum of the payment's
refunds that are pending or succeeded, which the refund scripts keep within `amount`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from channels.base import OrderRef
from router.clock import Clock, from_ms, rfc3339
from router.ids import new_id
from router.models import Payment
from router.store import keys
from router.store.batch import Batch
from router.store.codec import decode_fields, encode, mapping, maybe_text, text
from router.store.idempotency import IdempotencyKeyLost
from router.store.schedule import Schedule
from router.store.scripts import CREATE_PAYMENT, TRANSITION

INTERNAL_FIELDS = ("merchant_id", "created_ms", "client_ip", "payer_id")
LIST_SCAN_BATCH = 100
LIST_SCAN_LIMIT = 2000
"""At most this many index entries are read per list call when filtering by status."""


@dataclass(frozen=True)
class StoredPayment:
    """A payment and what only the router needs to know about it."""

    payment: Payment
    merchant_id: str
    created_ms: int
    client_ip: str | None = None
    payer_id: str | None = None

    def order_ref(self) -> OrderRef:
        """How the channel knows this payment's order."""
        return OrderRef(
            order_no=self.payment.id,
            created_at=from_ms(self.created_ms),
            channel_trade_no=self.payment.channel_trade_no,
        )


def decode(raw: Mapping[str, str]) -> StoredPayment:
    values = decode_fields(raw)
    values.pop("amount_reserved", None)
    internal = {name: values.pop(name, None) for name in INTERNAL_FIELDS}
    return StoredPayment(
        payment=Payment.model_validate(values),
        merchant_id=str(internal["merchant_id"]),
        created_ms=int(internal["created_ms"] or 0),
        client_ip=internal["client_ip"],
        payer_id=internal["payer_id"],
    )


class PaymentStore:
    def __init__(self, redis: aioredis.Redis, clock: Clock) -> None:
        self._redis = redis
        self._clock = clock
        self._create = redis.register_script(CREATE_PAYMENT)
        self._transition = redis.register_script(TRANSITION)

    async def create(
        self, stored: StoredPayment, due_ms: int, idempotency: tuple[str, str] | None = None
    ) -> tuple[bool, str]:
        """Write a new payment unless its merchant_order_id is held by another.

        One round trip, after `Schedule.queue_new`. Returns (created, payment id or the id of
        the payment that holds the merchant_order_id). With `idempotency` (the request's
        Idempotency-Key and owner token) the payment is bound to that key's record in the same
        step; `IdempotencyKeyLost` if the record is no longer the caller's (nothing written).
        """
        p, mch = stored.payment, stored.merchant_id
        fields = p.model_dump(mode="json") | {
            "merchant_id": mch,
            "created_ms": stored.created_ms,
            "client_ip": stored.client_ip,
            "payer_id": stored.payer_id,
        }
        script_keys = [
            keys.payment(mch, p.id),
            keys.order_holder(mch, p.merchant_order_id),
            keys.order_history(mch, p.merchant_order_id),
            keys.payments_by_created(mch),
        ]
        token = ""
        if idempotency is not None:
            idem_key, token = idempotency
            script_keys.append(keys.idempotency(mch, idem_key))
        batch = Batch(self._redis)
        Schedule.queue_new(batch, mch, p.id, due_ms)
        index = batch.script(
            self._create,
            script_keys,
            [p.id, stored.created_ms, p.merchant_order_id, token, *encode(fields)],
        )
        created, ident = (await batch.execute())[index]
        if int(created) < 0:
            raise IdempotencyKeyLost(p.id)
        return int(created) == 1, text(ident)

    async def get(self, mch: str, pay_id: str) -> StoredPayment | None:
        raw = mapping(await self._redis.hgetall(keys.payment(mch, pay_id)))
        return decode(raw) if raw else None

    async def owner(self, pay_id: str) -> str | None:
        return maybe_text(await self._redis.get(keys.owner(pay_id)))

    async def transition(
        self,
        stored: StoredPayment,
        status: str,
        fields: Mapping[str, Any],
        *,
        require: str | None = None,
    ) -> tuple[bool, str]:
        """Move the payment to `status` and set `fields`, atomically, if the rules allow.

        Refused (returns (False, current status)) when it would move the status backwards,
        rewrite a final status, or when `require` is given and the status is not `require`.
        A final status writes its `payment.<status>` event in the same step.
        """
        batch = Batch(self._redis)
        index = self.queue_transition(batch, stored, status, fields, require=require)
        return self.transition_result((await batch.execute())[index])

    def queue_transition(
        self,
        batch: Batch,
        stored: StoredPayment,
        status: str,
        fields: Mapping[str, Any],
        *,
        require: str | None = None,
    ) -> int:
        """`transition`, queued in a batch; read its answer with `transition_result`."""
        p, mch = stored.payment, stored.merchant_id
        evt_id, now_ms = new_id("evt"), self._clock.now_ms()
        return batch.script(
            self._transition,
            [
                keys.payment(mch, p.id),
                keys.order_holder(mch, p.merchant_order_id),
                keys.event(mch, evt_id),
                keys.events(mch),
                keys.outbox(mch),
            ],
            [status, require or "", evt_id, rfc3339(from_ms(now_ms)), now_ms, *encode(fields)],
        )

    @staticmethod
    def transition_result(raw: Any) -> tuple[bool, str]:
        applied, now = raw
        return bool(int(applied)), text(now)

    async def page(
        self,
        mch: str,
        *,
        limit: int,
        merchant_order_id: str | None = None,
        status: str | None = None,
        created_gte_ms: int | None = None,
        created_lt_ms: int | None = None,
        starting_after: StoredPayment | None = None,
    ) -> tuple[list[StoredPayment], bool]:
        """Newest first, after the cursor. Returns (page, has_more)."""
        if merchant_order_id is not None:
            members = await self._redis.smembers(keys.order_history(mch, merchant_order_id))
            loaded = await self._load(mch, [text(m) for m in members])
            candidates = [s for s in loaded if s is not None]
            candidates.sort(key=lambda s: (s.created_ms, s.payment.id), reverse=True)
            matches = [
                s
                for s in candidates
                if _in_window(s, created_gte_ms, created_lt_ms)
                and (status is None or s.payment.status == status)
                and (starting_after is None or _older(s, starting_after))
            ]
            return matches[:limit], len(matches) > limit

        index = keys.payments_by_created(mch)
        high: str = "+inf" if created_lt_ms is None else f"({created_lt_ms}"
        if starting_after is not None:
            high = str(starting_after.created_ms)
        low: str = "-inf" if created_gte_ms is None else str(created_gte_ms)
        page: list[StoredPayment] = []
        offset, scanned = 0, 0
        while scanned < LIST_SCAN_LIMIT:
            ids = [
                text(m)
                for m in await self._redis.zrevrangebyscore(
                    index, high, low, start=offset, num=LIST_SCAN_BATCH
                )
            ]
            if not ids:
                return page, False
            offset += len(ids)
            scanned += len(ids)
            for stored in await self._load(mch, ids):
                if stored is None:
                    continue
                if starting_after is not None and not _older(stored, starting_after):
                    continue
                if status is not None and stored.payment.status != status:
                    continue
                if len(page) == limit:
                    return page, True
                page.append(stored)
        return page, True

    async def _load(self, mch: str, ids: list[str]) -> list[StoredPayment | None]:
        pipe = self._redis.pipeline(transaction=False)
        for pay_id in ids:
            pipe.hgetall(keys.payment(mch, pay_id))
        return [decode(mapping(raw)) if raw else None for raw in await pipe.execute()]


def _older(stored: StoredPayment, cursor: StoredPayment) -> bool:
    """Strictly after the cursor in newest-first order (ties broken by id, as Redis does)."""
    return (stored.created_ms, stored.payment.id) < (cursor.created_ms, cursor.payment.id)


def _in_window(stored: StoredPayment, gte: int | None, lt: int | None) -> bool:
    return (gte is None or stored.created_ms >= gte) and (lt is None or stored.created_ms < lt)
