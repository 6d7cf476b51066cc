"""Webhook events in Redis: the outbox stream, delivery state, retries and dead letters.

Events are written by the status-change scripts (`router.store.scripts._EMIT`). Delivery:

- an event lives in its payment's partition (`router.store.keys`), and each partition has
  one outbox stream, read by the consumer group `dispatch`: any number of router processes
  share it; an entry is acknowledged (and deleted) only after its first attempt was
  recorded, so a process killed mid-delivery leaves it pending, and another process claims
  it (XAUTOCLAIM) once it has been idle long enough;
- later attempts wait in the partition's retry schedule, claimed under a lease exactly like
  the payment re-query schedule;
- an event whose last attempt failed goes to the merchant's dead-letter set (per partition);
- an event whose processing keeps failing before an attempt could be recorded (a bug, a
  corrupt record) is counted in the partition's `webhook-faults` and abandoned as a dead
  letter after `MAX_FAULTS`, so no entry is taken again forever;
- every change of an event's delivery state is one atomic write in its partition's slot
  (`router.store.batch.Atomic`);
- consumers are named per process: a process removes its own on a clean shutdown, and the
  others remove consumers long idle with nothing pending (a process that died). A consumer
  with pending entries is never removed: that would drop the entries from the group.

An event record that cannot be decoded (a field missing or malformed, damaged by hand or by a
partial restore) is `UnreadableEvent` from `get`, left out of a `page` (and named in it), and
an attempt row that is not JSON is `None` in `attempts`: callers decide what to show, and
report the damage (`router.damaged`).
"""

from __future__ import annotations

import json
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from router.store import keys
from router.store.batch import Atomic, Batch, atomic_script
from router.store.codec import mapping, text
from router.store.endpoints import DisabledEndpoints
from router.store.merge import newest_first
from router.store.scripts import CLAIM_DUE
from router.store.streams import GroupReader, StreamEntry

GROUP = "dispatch"
MAX_FAULTS = 5
"""Failed tries to process one event before it is abandoned as a dead letter."""
FINAL_STATES = ("delivered", "dead", "no_endpoint")
STATES = ("pending", "retrying", *FINAL_STATES)


class OutboxEntry(NamedTuple):
    """An entry read from a partition's outbox: where, which entry, whose event."""

    partition: int
    id: str
    merchant_id: str
    event_id: str


@dataclass(frozen=True)
class StoredEvent:
    id: str
    merchant_id: str
    type: str
    created_at: str
    created_ms: int
    payment_id: str
    data: dict[str, Any]
    state: str
    """pending, delivered, retrying, dead, or no_endpoint."""
    attempt_count: int
    series_start: int = 0
    """Attempts before the current delivery series (a resend starts a new one)."""

    def body(self) -> dict[str, Any]:
        """The webhook body, as signed and sent."""
        return {"id": self.id, "type": self.type, "created_at": self.created_at, "data": self.data}


class UnreadableEvent(Exception):
    """An event record in the store that cannot be decoded."""

    def __init__(self, merchant_id: str, event_id: str, reason: str) -> None:
        super().__init__(f"event {event_id} of merchant {merchant_id}: {reason}")
        self.merchant_id = merchant_id
        self.event_id = event_id
        self.reason = reason


class EventPage(NamedTuple):
    """One page of a merchant's events, newest first."""

    events: list[StoredEvent]
    has_more: bool
    unreadable: list[UnreadableEvent]
    """Records met on the way that could not be decoded, left out of `events`."""


REQUIRED = ("id", "merchant_id", "type", "created_at", "created_ms", "payment_id", "data")
"""Fields every event record has from the moment it is written (`scripts._EMIT`)."""


def _decode(mch: str, evt_id: str, raw: dict[str, str]) -> StoredEvent | None:
    """The event in a hash as the scripts write it; None for no hash. Raises
    `UnreadableEvent` naming the first field that is missing or malformed."""
    if not raw:
        return None

    def bad(name: str, why: str) -> UnreadableEvent:
        return UnreadableEvent(mch, evt_id, f"field {name!r} {why}")

    missing = [name for name in REQUIRED if not raw.get(name)]
    if missing:
        raise bad(missing[0], "is missing")
    if raw["id"] != evt_id:
        raise bad("id", "names another event")
    try:
        data = json.loads(raw["data"])
    except (ValueError, RecursionError):
        raise bad("data", "is not JSON") from None
    if not isinstance(data, dict):
        raise bad("data", "is not a JSON object")
    state = raw.get("state", "pending")
    if state not in STATES:
        raise bad("state", "is not a delivery state")
    numbers: dict[str, int] = {}
    for name in ("created_ms", "attempt_count", "series_start"):
        value = raw.get(name, "0")
        if not (value.isascii() and value.isdigit()):
            raise bad(name, "is not a whole number")
        numbers[name] = int(value)
    return StoredEvent(
        id=evt_id,
        merchant_id=mch,
        type=raw["type"],
        created_at=raw["created_at"],
        created_ms=numbers["created_ms"],
        payment_id=raw["payment_id"],
        data=data,
        state=state,
        attempt_count=numbers["attempt_count"],
        series_start=numbers["series_start"],
    )


def _attempt(row: Any) -> Any:
    try:
        return json.loads(text(row))
    except (ValueError, RecursionError):
        return None


def _mine(mch: str, raw: dict[str, str]) -> dict[str, str]:
    """The record if it is `mch`'s (or names no merchant: unreadable, reported as such)."""
    owner = raw.get("merchant_id")
    return raw if owner is None or owner == mch else {}


class EventStore:
    def __init__(self, redis: aioredis.Redis, *, clustered: bool = False) -> None:
        self._redis = redis
        self._claim = redis.register_script(CLAIM_DUE)
        self.outbox = GroupReader(redis, keys.outbox, GROUP, clustered=clustered)
        self._atomic = atomic_script(redis)
        self.endpoints = DisabledEndpoints(redis)

    async def get(self, mch: str, evt_id: str) -> StoredEvent | None:
        """The merchant's event, None if there is none. Raises `UnreadableEvent`."""
        try:
            raw = await self._redis.hgetall(keys.event(evt_id))
        except ResponseError as exc:
            if "WRONGTYPE" not in str(exc):
                raise
            raise UnreadableEvent(mch, evt_id, "the record is not a hash") from None
        return _decode(mch, evt_id, _mine(mch, mapping(raw)))

    async def attempts(self, mch: str, evt_id: str) -> list[Any]:
        """The event's recorded attempts, oldest first, as stored (JSON objects); a row that is
        not JSON is None, and a record that is not a list reads as no attempts. The caller has
        checked the event is `mch`'s (`get`)."""
        try:
            rows = await self._redis.lrange(keys.event_attempts(evt_id), 0, -1)
        except ResponseError as exc:
            if "WRONGTYPE" not in str(exc):
                raise
            return [None]
        return [_attempt(row) for row in rows]

    async def page(
        self, mch: str, *, limit: int, starting_after: StoredEvent | None, type_: str | None
    ) -> EventPage:
        """Newest first; `type_` filters; records that cannot be decoded are left out."""
        high = "+inf" if starting_after is None else str(starting_after.created_ms)
        cursor = None if starting_after is None else (starting_after.created_ms, starting_after.id)
        indexes = [keys.events(i, mch) for i in range(keys.PARTITIONS)]
        out: list[StoredEvent] = []
        unreadable: list[UnreadableEvent] = []
        async with aclosing(newest_first(self._redis, indexes, high)) as entries:
            while True:
                ids: list[str] = []
                async for score, evt_id in entries:
                    if cursor is None or (score, evt_id) < cursor:
                        ids.append(evt_id)
                    if len(ids) == 100:
                        break
                if not ids:
                    return EventPage(out, False, unreadable)
                pipe = self._redis.pipeline(transaction=False)
                for evt_id in ids:
                    pipe.hgetall(keys.event(evt_id))
                answers = await pipe.execute(raise_on_error=False)
                for evt_id, raw in zip(ids, answers, strict=True):
                    try:
                        if isinstance(raw, ResponseError):
                            raise UnreadableEvent(mch, evt_id, "the record is not a hash")
                        found = _decode(mch, evt_id, _mine(mch, mapping(raw)))
                    except UnreadableEvent as exc:
                        unreadable.append(exc)
                        continue
                    if found is None or (type_ is not None and found.type != type_):
                        continue
                    if len(out) == limit:
                        return EventPage(out, True, unreadable)
                    out.append(found)

    async def record_attempt(self, event: StoredEvent, attempt: dict[str, Any]) -> int:
        """Append one attempt; returns how many attempts the event has had."""
        pipe = Atomic(self._redis, self._atomic)
        pipe.rpush(keys.event_attempts(event.id), json.dumps(attempt))
        pipe.hincrby(keys.event(event.id), "attempt_count", 1)
        _changed(pipe, event.id)
        _, count, *_ = await pipe.execute()
        return int(count)

    async def fault(self, mch: str, evt_id: str) -> int:
        """Count one failure to process the event; returns how many there have been since
        it was last processed (`set_state` and `retry_at` reset the count)."""
        faults = keys.webhook_faults(keys.partition_of(evt_id))
        return int(await self._redis.hincrby(faults, evt_id, 1))

    async def abandon(
        self,
        mch: str,
        evt_id: str,
        entry: OutboxEntry | None,
        attempt: dict[str, Any],
        at_ms: int,
    ) -> None:
        """Stop taking an event whose processing keeps failing: record why and make it a dead
        letter (as far as its record still allows), then release it from the outbox and the
        retry schedule whatever happened."""
        partition = keys.partition_of(evt_id)
        try:
            pipe = Atomic(self._redis, self._atomic)
            pipe.rpush(keys.event_attempts(evt_id), json.dumps(attempt))
            pipe.hincrby(keys.event(evt_id), "attempt_count", 1)
            pipe.hset(keys.event(evt_id), "state", "dead")
            pipe.zadd(keys.dead_letters(partition, mch), {evt_id: at_ms})
            _changed(pipe, evt_id)
            await pipe.execute()
        finally:
            release = self._redis.pipeline(transaction=False)
            release.zrem(keys.webhook_retries(partition), f"{mch}/{evt_id}")
            release.hdel(keys.webhook_faults(partition), evt_id)
            if entry is not None:
                release.xack(keys.outbox(entry.partition), GROUP, entry.id)
                release.xdel(keys.outbox(entry.partition), entry.id)
            await release.execute()

    async def set_state(self, event: StoredEvent, state: str, *, dead_at_ms: int = 0) -> None:
        partition = keys.partition_of(event.id)
        pipe = Atomic(self._redis, self._atomic)
        pipe.hset(keys.event(event.id), "state", state)
        pipe.hdel(keys.webhook_faults(partition), event.id)
        member = f"{event.merchant_id}/{event.id}"
        if state in FINAL_STATES:
            pipe.zrem(keys.webhook_retries(partition), member)
        dead = keys.dead_letters(partition, event.merchant_id)
        if state == "dead":
            pipe.zadd(dead, {event.id: dead_at_ms})
        else:
            pipe.zrem(dead, event.id)
        _changed(pipe, event.id)
        await pipe.execute()

    async def retry_at(self, event: StoredEvent, due_ms: int) -> None:
        partition = keys.partition_of(event.id)
        pipe = Atomic(self._redis, self._atomic)
        pipe.hset(keys.event(event.id), "state", "retrying")
        pipe.hdel(keys.webhook_faults(partition), event.id)
        pipe.zadd(keys.webhook_retries(partition), {f"{event.merchant_id}/{event.id}": due_ms})
        _changed(pipe, event.id)
        await pipe.execute()

    async def claim_retries(self, now_ms: int, lease_ms: int, limit: int) -> list[tuple[str, str]]:
        """Due retries from every partition (about `limit` in all, at least one from each),
        each hidden from other processes for `lease_ms`: (merchant, event id)."""
        each = max(1, -(-limit // keys.PARTITIONS))
        batch = Batch(self._redis)
        for partition in range(keys.PARTITIONS):
            batch.script(self._claim, [keys.webhook_retries(partition)], [now_ms, lease_ms, each])
        out: list[tuple[str, str]] = []
        for raw in await batch.execute():
            for member in raw:
                mch, _, evt_id = text(member).partition("/")
                out.append((mch, evt_id))
        return out

    async def resend(self, event: StoredEvent) -> None:
        """Deliver again, on a fresh schedule, whatever its state."""
        partition = keys.partition_of(event.id)
        pipe = Atomic(self._redis, self._atomic)
        pipe.hset(
            keys.event(event.id),
            mapping={"state": "pending", "series_start": event.attempt_count},
        )
        pipe.zrem(keys.dead_letters(partition, event.merchant_id), event.id)
        pipe.zrem(keys.webhook_retries(partition), f"{event.merchant_id}/{event.id}")
        pipe.xadd(keys.outbox(partition), {"event": event.id, "mch": event.merchant_id})
        _changed(pipe, event.id)
        await pipe.execute()

    async def dead(self, mch: str) -> list[str]:
        """The merchant's dead letters, oldest first."""
        pipe = self._redis.pipeline(transaction=False)
        for partition in range(keys.PARTITIONS):
            pipe.zrange(keys.dead_letters(partition, mch), 0, -1, withscores=True)
        found = [
            (int(score), text(member))
            for answer in await pipe.execute()
            for member, score in cast(list[Any], answer)
        ]
        return [evt_id for _, evt_id in sorted(found)]

    async def oldest_retry_ms(self) -> int | None:
        pipe = self._redis.pipeline(transaction=False)
        for partition in range(keys.PARTITIONS):
            pipe.zrange(keys.webhook_retries(partition), 0, 0, withscores=True)
        scores = [int(found[0][1]) for found in await pipe.execute() if found]
        return min(scores) if scores else None

    # --- the outbox streams -------------------------------------------------------------

    async def ensure_groups(self) -> None:
        """Create the consumer group of every partition's outbox (and the stream) if missing."""
        await self.outbox.ensure_groups()

    async def read_new(self, consumer: str, count: int) -> list[OutboxEntry]:
        """New outbox entries for this consumer, from every partition. Waits up to `POLL_S`
        for some when there are none."""
        return [_entry(e) for e in await self.outbox.read_new(consumer, count)]

    async def claim_stale(self, consumer: str, min_idle_ms: int, count: int) -> list[OutboxEntry]:
        """Entries another consumer took and never acknowledged (its process died), from every
        partition's outbox in one round trip."""
        return [_entry(e) for e in await self.outbox.claim_stale(consumer, min_idle_ms, count)]

    async def ack(self, entry: OutboxEntry) -> None:
        pipe = Atomic(self._redis, self._atomic)
        pipe.xack(keys.outbox(entry.partition), GROUP, entry.id)
        pipe.xdel(keys.outbox(entry.partition), entry.id)
        await pipe.execute()

    async def remove_consumers(self, min_idle_ms: int, only: str = "") -> list[str]:
        """Remove consumers (`only` that one) holding no pending entries and idle at least
        `min_idle_ms` from every partition's group; returns the names removed, one per
        group."""
        return await self.outbox.remove_consumers(min_idle_ms, only)

    async def pending_count(self) -> int:
        return await self.outbox.length()


def _changed(pipe: Atomic, evt_id: str) -> None:
    """Raise the event's version and name it in the change stream, with the group's writes
    (`router.store.scripts`, "Versions and the change stream")."""
    pipe.hincrby(keys.event(evt_id), "v", 1)
    pipe.xadd(keys.changes(keys.partition_of(evt_id)), {"evt": evt_id})


def _entry(entry: StreamEntry) -> OutboxEntry:
    return OutboxEntry(
        entry.partition, entry.id, entry.fields.get("mch", ""), entry.fields.get("event", "")
    )
