"""Payments in Redis: one hash per payment, moved between statuses only by Lua scripts.

Every field of the hash holds JSON (see `router.store.codec`). Beside the public fields the hash
keeps `merchant_id`, `created_ms`, `client_ip` and `payer_id` (what the channel needs again on
close or query, never shown to merchants) and `amount_reserved`, the sum of the payment's
refunds that are pending or succeeded, which the refund scripts keep within `amount`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Literal

import redis.asyncio as aioredis

from channels.base import OrderRef
from router.clock import Clock, from_ms, rfc3339
from router.ids import new_id
from router.models import Payment
from router.store import keys
from router.store.batch import Batch
from router.store.codec import decode_fields, encode, mapping, text
from router.store.merge import newest_first
from router.store.schedule import Schedule
from router.store.scripts import CLAIM_CHANNEL, CREATE_PAYMENT, HDEL_IF, PAYMENT_HIDDEN, TRANSITION

_CREATION: dict[int, Literal["created", "held", "made"]] = {1: "created", 0: "held", 2: "made"}
INTERNAL_FIELDS = tuple(name for name in PAYMENT_HIDDEN if name not in ("amount_reserved", "v"))
VERSION = "v"
"""The hidden field every state change raises (`router.store.scripts`): the record keeps the
highest version it has seen of each object."""
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
    abandoned: tuple[str, ...] = ()
    """Accounts a failover left an order at without proof that none exists there (a
    buyer-initiated method whose query failed); the worker closes them."""
    buyer_action: dict[str, Any] | None = None
    """A checkout's channel action (`router.payments.checkout`); None for other payments."""

    @property
    def account(self) -> str:
        """The channel account that holds the payment's order. Only a checkout that no buyer
        has opened in a wallet has none, and nothing asks a channel about such a payment
        (`router.payments.checkout`)."""
        if self.payment.channel is None:
            raise ValueError(f"payment {self.payment.id} has no channel yet")
        return self.payment.channel

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
    values.pop(VERSION, None)
    internal = {name: values.pop(name, None) for name in INTERNAL_FIELDS}
    return StoredPayment(
        payment=Payment.model_validate(values),
        merchant_id=str(internal["merchant_id"]),
        created_ms=int(internal["created_ms"] or 0),
        client_ip=internal["client_ip"],
        payer_id=internal["payer_id"],
        buyer_action=internal["buyer_action"],
        abandoned=tuple(internal["abandoned"] or ()),
    )


@dataclass(frozen=True)
class Creation:
    """What `PaymentStore.create` did: `created` the payment, or found the order `held` by
    another payment, or found the payment an earlier attempt under the same Idempotency-Key
    `made` (`payment_id` names the payment in each case)."""

    outcome: Literal["created", "held", "made"]
    payment_id: str
    replicas: int | None = None
    """With `Replication`: the replicas that acknowledged the write (None: not asked)."""


@dataclass(frozen=True)
class Replication:
    """Wait, after the writes of a create, until `replicas` replicas acknowledge them or
    `timeout_ms` passes (`WAIT`): a primary failover then loses no acknowledged create."""

    replicas: int
    timeout_ms: int


class PaymentStore:
    def __init__(
        self, redis: aioredis.Redis, clock: Clock, replication: Replication | None = None
    ) -> None:
        self._redis = redis
        self._clock = clock
        self.replication = replication
        self._create = redis.register_script(CREATE_PAYMENT)
        self._transition = redis.register_script(TRANSITION)
        self._unbind = redis.register_script(HDEL_IF)
        self._claim = redis.register_script(CLAIM_CHANNEL)

    @staticmethod
    def new_id(mch: str, merchant_order_id: str) -> str:
        """A new payment's id: it carries the partition its merchant_order_id is checked in."""
        return new_id("pay", partition=keys.order_partition(mch, merchant_order_id))

    async def create(
        self,
        stored: StoredPayment,
        due_ms: int,
        idempotency_key: str | None = None,
        *,
        recorded_holder: str | None = None,
    ) -> Creation:
        """Write a new payment, due for its first re-query at `due_ms`, unless its
        merchant_order_id is held by another; one script in the payment's partition.

        With `idempotency_key` (the key the request runs under) the payment is bound to the
        key beside its order, for as long as the key's record lives: a retry under the key
        meets it here (`made`) instead of writing a second one.

        `recorded_holder`: a payment of the record that holds the merchant_order_id (not
        failed); it holds the order when the order is no longer in Redis (retention).
        """
        p, mch = stored.payment, stored.merchant_id
        partition = keys.partition_of(p.id)
        if partition != keys.order_partition(mch, p.merchant_order_id):
            raise ValueError(f"payment id {p.id} is not from PaymentStore.new_id")
        fields = p.model_dump(mode="json") | {
            "merchant_id": mch,
            "created_ms": stored.created_ms,
            "client_ip": stored.client_ip,
            "payer_id": stored.payer_id,
        }
        schedule_key, entry = Schedule.entry(mch, p.id)
        key_field = "" if idempotency_key is None else keys.key_field(idempotency_key)
        batch = Batch(self._redis)
        index = batch.script(
            self._create,
            [
                keys.payment(p.id),
                keys.order(mch, p.merchant_order_id),
                keys.payments_by_created(partition, mch),
                schedule_key,
                keys.changes(partition),
            ],
            [
                p.id,
                stored.created_ms,
                key_field,
                due_ms,
                entry,
                recorded_holder or "",
                *encode(fields),
            ],
        )
        waited = self.queue_wait(batch, p.id)
        results = await batch.execute()
        outcome, ident = results[index]
        replicas = None if waited is None else int(results[waited])
        return Creation(_CREATION[int(outcome)], text(ident), replicas)

    def queue_wait(self, batch: Batch, object_id: str) -> int | None:
        """With `replication`, queue a WAIT covering the batch's writes in `object_id`'s
        partition; returns its index in the results (None: no replication asked)."""
        if self.replication is None:
            return None
        r = self.replication
        return batch.wait(keys.payment(object_id), r.replicas, r.timeout_ms)

    async def unbind(self, stored: StoredPayment, idempotency_key: str) -> None:
        """Forget that the payment was made under the key (it failed before any channel had
        it, and that answer is not remembered): a retry makes a new payment."""
        p = stored.payment
        await self._unbind(
            keys=[keys.order(stored.merchant_id, p.merchant_order_id)],
            args=[keys.key_field(idempotency_key), p.id],
        )

    async def claim_channel(self, pay_id: str, fields: Mapping[str, Any]) -> bool:
        """Point a pending checkout that has no channel yet at one (and its buyer); False if
        it is no longer pending or another request pointed it first."""
        stream = keys.changes(keys.partition_of(pay_id))
        claimed = await self._claim(
            keys=[keys.payment(pay_id), stream], args=[pay_id, *encode(fields)]
        )
        return bool(int(claimed))

    async def get(self, mch: str, pay_id: str) -> StoredPayment | None:
        """The merchant's payment; None if there is none, or it is another merchant's."""
        found = await self.find(pay_id)
        return found if found is not None and found.merchant_id == mch else None

    async def find(self, pay_id: str) -> StoredPayment | None:
        """The payment, whoever's it is (for channel callbacks)."""
        raw = mapping(await self._redis.hgetall(keys.payment(pay_id)))
        return decode(raw) if raw else None

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
        partition = keys.partition_of(p.id)
        evt_id, now_ms = new_id("evt", partition=partition), self._clock.now_ms()
        return batch.script(
            self._transition,
            [
                keys.payment(p.id),
                keys.order(mch, p.merchant_order_id),
                keys.event(evt_id),
                keys.events(partition, mch),
                keys.outbox(partition),
                keys.changes(partition),
            ],
            [
                status,
                require or "",
                evt_id,
                rfc3339(from_ms(now_ms)),
                now_ms,
                mch,
                p.id,
                *encode(fields),
            ],
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
            fields = await self._redis.hkeys(keys.order(mch, merchant_order_id))
            made = [text(f)[4:] for f in fields if text(f).startswith("pay:")]
            loaded = await self._load(mch, made)
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

        high: str = "+inf" if created_lt_ms is None else f"({created_lt_ms}"
        if starting_after is not None:
            high = str(starting_after.created_ms)
        low: str = "-inf" if created_gte_ms is None else str(created_gte_ms)
        indexes = [keys.payments_by_created(i, mch) for i in range(keys.PARTITIONS)]
        async with aclosing(newest_first(self._redis, indexes, high, low)) as entries:
            return await self._fill(mch, entries, limit, status, starting_after)

    async def _fill(
        self,
        mch: str,
        entries: AsyncIterator[tuple[int, str]],
        limit: int,
        status: str | None,
        starting_after: StoredPayment | None,
    ) -> tuple[list[StoredPayment], bool]:
        page: list[StoredPayment] = []
        scanned, ids = 0, list[str]()
        while scanned < LIST_SCAN_LIMIT:
            ids.clear()
            async for _, pay_id in entries:
                ids.append(pay_id)
                if len(ids) == LIST_SCAN_BATCH:
                    break
            if not ids:
                return page, False
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
            pipe.hgetall(keys.payment(pay_id))
        out: list[StoredPayment | None] = []
        for raw in await pipe.execute():
            stored = decode(mapping(raw)) if raw else None
            out.append(stored if stored is not None and stored.merchant_id == mch else None)
        return out


def _older(stored: StoredPayment, cursor: StoredPayment) -> bool:
    """Strictly after the cursor in newest-first order (ties broken by id, as Redis does)."""
    return (stored.created_ms, stored.payment.id) < (cursor.created_ms, cursor.payment.id)


def _in_window(stored: StoredPayment, gte: int | None, lt: int | None) -> bool:
    return (gte is None or stored.created_ms >= gte) and (lt is None or stored.created_ms < lt)
