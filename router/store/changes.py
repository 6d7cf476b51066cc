"""The change streams the record is drained from, and the retention of what it holds.

Every script that changes a payment, refund or event raises the object's hidden version and
appends its kind and id to the partition's change stream `pr:{P}:changes` in the same step
(`router.store.scripts`). The drainer (`router.record.drain`) reads the streams through the
consumer group `record` (`router.store.streams`), reads each object's current hash, writes it
to the record and acknowledges. Entries of kind `mch`, `key` and `ntf` are self-contained
rows (JSON): merchants, API keys' metadata and channel notifications as received.

Retention: an object the record holds in a final state is scheduled to leave Redis
(`pr:{P}:retire`, member `[kind, id, version, merchant, merchant_order_id]` as JSON, score
when); the sweeper claims due members per partition like the re-query schedule and removes
each object only if it is still at the recorded version (`scripts.RETIRE`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import redis.asyncio as aioredis

from router.store import keys
from router.store.batch import Batch
from router.store.codec import mapping, text
from router.store.scripts import CLAIM_DUE, RESTORE_EVENT, RESTORE_PAYMENT, RETIRE
from router.store.streams import GroupReader

if TYPE_CHECKING:
    from router.store.events import StoredEvent
    from router.store.merchants import ApiKey, Merchant

GROUP = "record"
KINDS = ("pay", "re", "evt")
"""Objects named by id in a change entry; the drainer reads their current hash."""
ROW_KINDS = ("mch", "key", "ntf")
"""Self-contained entries: the row itself, as JSON."""


class Loaded(NamedTuple):
    """An object's hash as Redis holds it now (empty: gone), with an event's attempts."""

    raw: dict[str, str]
    attempts: list[Any]


class Retiring(NamedTuple):
    """A recorded final object to remove from Redis at `due_ms` if still at `version`."""

    kind: str
    id: str
    version: int
    merchant_id: str
    merchant_order_id: str
    due_ms: int

    def member(self) -> str:
        return json.dumps(
            [self.kind, self.id, self.version, self.merchant_id, self.merchant_order_id]
        )


def _key(kind: str, object_id: str) -> str:
    if kind == "pay":
        return keys.payment(object_id)
    if kind == "re":
        return keys.refund(object_id)
    return keys.event(object_id)


class ChangeStore:
    def __init__(self, redis: aioredis.Redis, *, clustered: bool) -> None:
        self._redis = redis
        self.reader = GroupReader(redis, keys.changes, GROUP, clustered=clustered)
        self._claim = redis.register_script(CLAIM_DUE)
        self._retire = redis.register_script(RETIRE)
        self._restore = redis.register_script(RESTORE_PAYMENT)
        self._restore_event = redis.register_script(RESTORE_EVENT)

    async def load(self, objects: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Loaded]:
        """The current hash of each (kind, id), and each event's attempts: one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        for kind, object_id in objects:
            pipe.hgetall(_key(kind, object_id))
            if kind == "evt":
                pipe.lrange(keys.event_attempts(object_id), 0, -1)
        answers = iter(await pipe.execute(raise_on_error=False))
        out = {}
        for kind, object_id in objects:
            found = next(answers)
            # A key of another type (damaged by hand) reads as nothing to copy.
            raw = {} if isinstance(found, Exception) else mapping(found)
            attempts: list[Any] = []
            if kind == "evt":
                rows = next(answers)
                for row in [] if isinstance(rows, Exception) else rows:
                    try:
                        attempts.append(json.loads(text(row)))
                    except ValueError:
                        attempts.append(None)
            out[kind, object_id] = Loaded(raw, attempts)
        return out

    async def notification(self, row: Mapping[str, Any], body: bytes) -> None:
        """A channel notification as received, for the record's audit table."""
        full = dict(row) | {"body_hex": body.hex()}
        await append_row(self._redis, "ntf", str(row.get("payment_id") or row["account"]), full)

    async def schedule_retire(self, items: Iterable[Retiring]) -> None:
        """Schedule recorded final objects to leave Redis (a member already there keeps its
        time)."""
        pipe = self._redis.pipeline(transaction=False)
        queued = False
        for item in items:
            pipe.zadd(
                keys.retire(keys.partition_of(item.id)), {item.member(): item.due_ms}, nx=True
            )
            queued = True
        if queued:
            await pipe.execute()

    async def retire_due(self, now_ms: int, lease_ms: int, limit: int) -> dict[str, int]:
        """Claim the members due by `now_ms` from every partition (each hidden from the other
        processes for `lease_ms`) and remove their objects; returns how many went, by kind."""
        each = max(1, -(-limit // keys.PARTITIONS))
        claim = Batch(self._redis)
        for partition in range(keys.PARTITIONS):
            claim.script(self._claim, [keys.retire(partition)], [now_ms, lease_ms, each])
        due = [
            (partition, text(member))
            for partition, members in enumerate(await claim.execute())
            for member in members
        ]
        if not due:
            return {}
        batch = Batch(self._redis)
        kinds = []
        for partition, member in due:
            try:
                kind, object_id, version, mch, order = json.loads(member)
            except (ValueError, TypeError):
                batch.pipe.zrem(keys.retire(partition), member)
                continue
            extra: list[str] = []
            if kind == "pay":
                extra = [
                    keys.payments_by_created(partition, mch),
                    keys.order(mch, order),
                    keys.payment_refunds(object_id),
                ]
            elif kind == "evt":
                extra = [keys.event_attempts(object_id), keys.events(partition, mch)]
            batch.script(
                self._retire,
                [keys.retire(partition), _key(kind, object_id), *extra],
                [member, kind, object_id, str(version)],
            )
            kinds.append((batch.index(), kind))
        results = await batch.execute()
        out: dict[str, int] = {}
        for index, kind in kinds:
            if int(results[index]):
                out[kind] = out.get(kind, 0) + 1
        return out

    async def restore_payment(
        self,
        pay_id: str,
        mch: str,
        created_ms: int,
        fields: Sequence[str],
        refunds: Sequence[tuple[str, int]],
    ) -> bool:
        """Put a payment that left Redis back (`scripts.RESTORE_PAYMENT`), with its refunds'
        index, unless it is there. `fields`: the hash's field/value pairs, its version
        included. Returns True if written."""
        partition = keys.partition_of(pay_id)
        flat: list[str | int] = []
        for re_id, at_ms in refunds:
            flat += [re_id, at_ms]
        written = await self._restore(
            keys=[
                keys.payment(pay_id),
                keys.payment_refunds(pay_id),
                keys.payments_by_created(partition, mch),
            ],
            args=[pay_id, created_ms, len(refunds), *flat, *fields],
        )
        return bool(int(written))

    async def restore_event(
        self, event: StoredEvent, attempts: Sequence[Mapping[str, Any]], version: int
    ) -> bool:
        """Put an event that left Redis back (`scripts.RESTORE_EVENT`) with its attempts,
        unless it is there. Returns True if written."""
        fields: list[str | int] = [
            "id", event.id, "type", event.type, "created_at", event.created_at,
            "created_ms", event.created_ms, "payment_id", event.payment_id,
            "merchant_id", event.merchant_id, "data", json.dumps(event.data),
            "state", event.state, "attempt_count", event.attempt_count, "v", version,
        ]  # fmt: skip
        written = await self._restore_event(
            keys=[
                keys.event(event.id),
                keys.event_attempts(event.id),
                keys.events(keys.partition_of(event.id), event.merchant_id),
            ],
            args=[
                event.id,
                event.created_ms,
                len(attempts),
                *(json.dumps(a) for a in attempts),
                *fields,
            ],
        )
        return bool(int(written))

    async def scheduled(self) -> int:
        """Objects scheduled to leave Redis, in every partition."""
        pipe = self._redis.pipeline(transaction=False)
        for partition in range(keys.PARTITIONS):
            pipe.zcard(keys.retire(partition))
        return sum(int(n) for n in await pipe.execute())


def _ms(moment: str) -> int:
    """An RFC 3339 time as whole milliseconds (the record's times)."""
    return int(datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp() * 1000)


async def append_row(
    redis: aioredis.Redis, kind: str, object_id: str, row: Mapping[str, Any]
) -> None:
    """A self-contained entry (`ROW_KINDS`) for the record, in a partition chosen from the
    object, written after the change it records: a crash between them leaves the record one
    change behind until the next."""
    await redis.xadd(keys.changes(keys.spread(kind, object_id)), {kind: json.dumps(row)})


async def record_merchant(redis: aioredis.Redis, merchant: Merchant, now_ms: int) -> None:
    """Hand a merchant's profile to the record."""
    row = {
        "id": merchant.id,
        "name": merchant.name,
        "notify_url": merchant.notify_url,
        "require_signed": merchant.require_signed,
        "created_ms": _ms(merchant.created_at),
        "updated_ms": now_ms,
    }
    await append_row(redis, "mch", merchant.id, row)


async def record_key(redis: aioredis.Redis, key: ApiKey) -> None:
    """Hand an API key's metadata to the record: never its secret nor the secret's hash."""
    row = {
        "id": key.id,
        "merchant_id": key.merchant_id,
        "mode": key.mode,
        "created_ms": _ms(key.created_at),
        "expires_ms": key.expires_at_ms,
    }
    await append_row(redis, "key", key.id, row)
