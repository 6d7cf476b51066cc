"""Webhook events in Redis: the outbox stream, delivery state, retries and dead letters.

Events are written by the status-change scripts (`router.store.scripts._EMIT`). Delivery:

- each merchant's outbox is a stream read by the consumer group `dispatch`: any number of
  router processes share it; an entry is acknowledged (and deleted) only after its first
  attempt was recorded, so a process killed mid-delivery leaves it pending, and another
  process claims it (XAUTOCLAIM) once it has been idle long enough;
- later attempts wait in one schedule (`pr:{webhooks}:retry`), claimed under a lease exactly
  like the payment re-query schedule;
- an event whose last attempt failed goes to the merchant's dead-letter set;
- an event whose processing keeps failing before an attempt could be recorded (a bug, a
  corrupt record) is counted in `pr:{mch}:webhook-faults` and abandoned as a dead letter
  after `MAX_FAULTS`, so no entry is taken again forever;
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
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from router.store import keys
from router.store.codec import mapping, text
from router.store.endpoints import DisabledEndpoints
from router.store.scripts import CLAIM_DUE

GROUP = "dispatch"
MAX_FAULTS = 5
"""Failed tries to process one event before it is abandoned as a dead letter."""
FINAL_STATES = ("delivered", "dead", "no_endpoint")
STATES = ("pending", "retrying", *FINAL_STATES)

REMOVE_IDLE_CONSUMERS = """
-- KEYS: an outbox stream
-- ARGV: group, min_idle_ms, only ('' = any consumer)
-- Removes the group's consumers that hold no pending entries and have been idle at least
-- min_idle_ms; in one script, so no entry can be handed to one between check and removal.
local info = redis.pcall('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if type(info) ~= 'table' or info.err then
  return {}
end
local removed = {}
for _, row in ipairs(info) do
  local c = {}
  for i = 1, #row, 2 do
    c[row[i]] = row[i + 1]
  end
  if (ARGV[3] == '' or c['name'] == ARGV[3]) and tonumber(c['pending']) == 0
      and tonumber(c['idle']) >= tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], c['name'])
    table.insert(removed, c['name'])
  end
end
return removed
"""


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


REQUIRED = ("id", "type", "created_at", "created_ms", "payment_id", "data")
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


class EventStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._claim = redis.register_script(CLAIM_DUE)
        self._remove_idle = redis.register_script(REMOVE_IDLE_CONSUMERS)
        self.endpoints = DisabledEndpoints(redis)

    async def get(self, mch: str, evt_id: str) -> StoredEvent | None:
        """The event, None if there is none. Raises `UnreadableEvent`."""
        try:
            raw = await self._redis.hgetall(keys.event(mch, evt_id))
        except ResponseError as exc:
            if "WRONGTYPE" not in str(exc):
                raise
            raise UnreadableEvent(mch, evt_id, "the record is not a hash") from None
        return _decode(mch, evt_id, mapping(raw))

    async def attempts(self, mch: str, evt_id: str) -> list[Any]:
        """The event's recorded attempts, oldest first, as stored (JSON objects); a row that is
        not JSON is None, and a record that is not a list reads as no attempts."""
        try:
            rows = await self._redis.lrange(keys.event_attempts(mch, evt_id), 0, -1)
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
        out: list[StoredEvent] = []
        unreadable: list[UnreadableEvent] = []
        offset = 0
        while True:
            batch = await self._redis.zrevrangebyscore(
                keys.events(mch), high, "-inf", start=offset, num=100, withscores=True
            )
            if not batch:
                return EventPage(out, False, unreadable)
            offset += len(batch)
            pairs = cast(list[tuple[Any, float]], batch)  # withscores: (member, score)
            ids = [
                evt_id
                for evt_id, score in ((text(m), int(s)) for m, s in pairs)
                if cursor is None or (score, evt_id) < cursor
            ]
            pipe = self._redis.pipeline(transaction=False)
            for evt_id in ids:
                pipe.hgetall(keys.event(mch, evt_id))
            answers = await pipe.execute(raise_on_error=False)
            for evt_id, raw in zip(ids, answers, strict=True):
                try:
                    if isinstance(raw, ResponseError):
                        raise UnreadableEvent(mch, evt_id, "the record is not a hash")
                    found = _decode(mch, evt_id, mapping(raw))
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
        pipe = self._redis.pipeline(transaction=True)
        pipe.rpush(keys.event_attempts(event.merchant_id, event.id), json.dumps(attempt))
        pipe.hincrby(keys.event(event.merchant_id, event.id), "attempt_count", 1)
        _, count = await pipe.execute()
        return int(count)

    async def fault(self, mch: str, evt_id: str) -> int:
        """Count one failure to process the event; returns how many there have been since
        it was last processed (`set_state` and `retry_at` reset the count)."""
        return int(await self._redis.hincrby(keys.webhook_faults(mch), evt_id, 1))

    async def abandon(
        self, mch: str, evt_id: str, entry_id: str | None, attempt: dict[str, Any], at_ms: int
    ) -> None:
        """Stop taking an event whose processing keeps failing: record why and make it a dead
        letter (as far as its record still allows), then release it from the outbox and the
        retry schedule whatever happened."""
        try:
            pipe = self._redis.pipeline(transaction=True)
            pipe.rpush(keys.event_attempts(mch, evt_id), json.dumps(attempt))
            pipe.hincrby(keys.event(mch, evt_id), "attempt_count", 1)
            pipe.hset(keys.event(mch, evt_id), "state", "dead")
            pipe.zadd(keys.dead_letters(mch), {evt_id: at_ms})
            await pipe.execute()
        finally:
            pipe = self._redis.pipeline(transaction=False)
            pipe.zrem(keys.webhook_retries(), f"{mch}/{evt_id}")
            pipe.hdel(keys.webhook_faults(mch), evt_id)
            if entry_id is not None:
                pipe.xack(keys.outbox(mch), GROUP, entry_id)
                pipe.xdel(keys.outbox(mch), entry_id)
            await pipe.execute()

    async def set_state(self, event: StoredEvent, state: str, *, dead_at_ms: int = 0) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(keys.event(event.merchant_id, event.id), "state", state)
        pipe.hdel(keys.webhook_faults(event.merchant_id), event.id)
        member = f"{event.merchant_id}/{event.id}"
        if state in FINAL_STATES:
            pipe.zrem(keys.webhook_retries(), member)
        if state == "dead":
            pipe.zadd(keys.dead_letters(event.merchant_id), {event.id: dead_at_ms})
        else:
            pipe.zrem(keys.dead_letters(event.merchant_id), event.id)
        await pipe.execute()

    async def retry_at(self, event: StoredEvent, due_ms: int) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(keys.event(event.merchant_id, event.id), "state", "retrying")
        pipe.hdel(keys.webhook_faults(event.merchant_id), event.id)
        pipe.zadd(keys.webhook_retries(), {f"{event.merchant_id}/{event.id}": due_ms})
        await pipe.execute()

    async def claim_retries(self, now_ms: int, lease_ms: int, limit: int) -> list[tuple[str, str]]:
        raw = await self._claim(keys=[keys.webhook_retries()], args=[now_ms, lease_ms, limit])
        return [tuple(text(m).split("/", 1)) for m in raw]  # type: ignore[misc]

    async def resend(self, event: StoredEvent) -> None:
        """Deliver again, on a fresh schedule, whatever its state."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(
            keys.event(event.merchant_id, event.id),
            mapping={"state": "pending", "series_start": event.attempt_count},
        )
        pipe.zrem(keys.dead_letters(event.merchant_id), event.id)
        pipe.zrem(keys.webhook_retries(), f"{event.merchant_id}/{event.id}")
        pipe.xadd(keys.outbox(event.merchant_id), {"event": event.id})
        await pipe.execute()

    async def dead(self, mch: str) -> list[str]:
        return [text(m) for m in await self._redis.zrange(keys.dead_letters(mch), 0, -1)]

    async def oldest_retry_ms(self) -> int | None:
        found = await self._redis.zrange(keys.webhook_retries(), 0, 0, withscores=True)
        return int(found[0][1]) if found else None

    # --- the outbox streams -------------------------------------------------------------

    async def ensure_group(self, mch: str) -> None:
        try:
            await self._redis.xgroup_create(keys.outbox(mch), GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read_new(
        self, merchants: list[str], consumer: str, count: int, block_ms: int
    ) -> list[tuple[str, str, str]]:
        """New outbox entries for this consumer: (merchant, entry id, event id)."""
        if not merchants:
            return []
        streams: dict[Any, Any] = {keys.outbox(m): ">" for m in merchants}
        answer = await self._redis.xreadgroup(GROUP, consumer, streams, count=count, block=block_ms)
        return self._entries(answer)

    async def claim_stale(
        self, merchants: list[str], consumer: str, min_idle_ms: int, count: int
    ) -> list[tuple[str, str, str]]:
        """Entries another consumer took and never acknowledged (its process died), from every
        merchant's outbox in one round trip: (merchant, entry id, event id)."""
        pipe = self._redis.pipeline(transaction=False)
        for mch in merchants:
            pipe.xautoclaim(
                keys.outbox(mch), GROUP, consumer, min_idle_ms, start_id="0-0", count=count
            )
        out = []
        for mch, answer in zip(merchants, await pipe.execute(), strict=True):
            claimed = answer[1] if len(answer) > 1 else []
            out += [
                (mch, text(entry), text(fields.get("event", "")))
                for entry, fields in claimed
                if fields
            ]
        return out

    async def ack(self, mch: str, entry_id: str) -> None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.xack(keys.outbox(mch), GROUP, entry_id)
        pipe.xdel(keys.outbox(mch), entry_id)
        await pipe.execute()

    async def remove_consumers(
        self, merchants: list[str], min_idle_ms: int, only: str = ""
    ) -> list[str]:
        """Remove consumers (`only` that one) holding no pending entries and idle at least
        `min_idle_ms` from every merchant's group; returns the names removed, one per group."""
        pipe = self._redis.pipeline(transaction=False)
        for mch in merchants:
            await self._remove_idle(
                keys=[keys.outbox(mch)], args=[GROUP, min_idle_ms, only], client=pipe
            )
        return [text(name) for removed in await pipe.execute() for name in removed]

    async def pending_count(self, merchants: list[str]) -> int:
        pipe = self._redis.pipeline(transaction=False)
        for m in merchants:
            pipe.xlen(keys.outbox(m))
        return sum(int(n) for n in await pipe.execute())

    @staticmethod
    def _entries(answer: Any) -> list[tuple[str, str, str]]:
        out = []
        for stream, entries in answer or []:
            name = text(stream)
            mch = name.split("{", 1)[1].split("}", 1)[0]
            for entry_id, fields in entries:
                out.append((mch, text(entry_id), text(fields.get("event", ""))))
        return out
