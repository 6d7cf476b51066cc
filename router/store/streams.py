"""Reading a family of per-partition streams through one consumer group.

The webhook outboxes (`router.store.events`, group `dispatch`) and the record's change
streams (`router.store.changes`, group `record`) are read the same way: any number of router
processes share the group; on one server one blocking XREADGROUP spans all 64 streams; on a
Cluster (where one read cannot span slots) one non-blocking read per partition goes to every
node at once, the wait between empty polls growing to `IDLE_POLL_S`; entries a dead process
took and never acknowledged are claimed (XAUTOCLAIM) once idle long enough.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, NamedTuple

import redis.asyncio as aioredis

from router.store import keys
from router.store.batch import Batch
from router.store.codec import text
from router.store.scripts import READ_OUTBOX, REMOVE_IDLE_CONSUMERS

POLL_S = 0.2
"""How long a read waits for new entries (blocking on one server; between non-blocking polls
on a Cluster, where one read cannot span the partitions' slots)."""
IDLE_POLL_S = 1.0
"""On a Cluster, the wait between polls grows from `POLL_S` to this while nothing comes: an
idle router costs 64 reads a second per group, and the first entry after a quiet spell waits
at most this long."""


class StreamEntry(NamedTuple):
    """An entry read from one partition's stream: where, which entry, its fields."""

    partition: int
    id: str
    fields: dict[str, str]

    @property
    def ms(self) -> int:
        """When the entry was added (the first part of its id), ms since the epoch."""
        return int(self.id.partition("-")[0])


def _pairs(flat: Any) -> dict[str, str]:
    """A stream entry's fields as a script returns them: a flat list of names and values."""
    items = [text(v) for v in flat]
    return dict(zip(items[::2], items[1::2], strict=True))


class GroupReader:
    """One consumer group over the stream `stream(p)` of every partition."""

    def __init__(
        self,
        redis: aioredis.Redis,
        stream: Callable[[int], str],
        group: str,
        *,
        clustered: bool,
    ) -> None:
        self._redis = redis
        self.stream = stream
        self.group = group
        self._clustered = clustered
        self._quiet = 0
        """Polls in a row that found nothing (Cluster only)."""
        self._read = redis.register_script(READ_OUTBOX)
        self._remove_idle = redis.register_script(REMOVE_IDLE_CONSUMERS)
        self._partition_of = {stream(p): p for p in range(keys.PARTITIONS)}

    async def ensure_groups(self) -> None:
        """Create the group on every partition's stream (and the stream) if missing."""
        pipe = self._redis.pipeline(transaction=False)
        for partition in range(keys.PARTITIONS):
            pipe.xgroup_create(self.stream(partition), self.group, id="0", mkstream=True)
        for answer in await pipe.execute(raise_on_error=False):
            if isinstance(answer, Exception) and "BUSYGROUP" not in str(answer):
                raise answer

    async def read_new(
        self, consumer: str, count: int, *, spread: bool = False
    ) -> list[StreamEntry]:
        """New entries for this consumer, from every partition. Waits up to `POLL_S` for some
        when there are none. On one server `count` is per stream unless `spread` (then, as on
        a Cluster, about `count` in all, at least one per stream)."""
        if not self._clustered:
            streams: dict[Any, Any] = {self.stream(p): ">" for p in range(keys.PARTITIONS)}
            each = max(1, -(-count // keys.PARTITIONS)) if spread else count
            answer: Any = await self._redis.xreadgroup(
                self.group, consumer, streams, count=each, block=int(POLL_S * 1000)
            )
            out = []
            for stream, entries in answer or []:
                partition = self._partition_of[text(stream)]
                out += [
                    StreamEntry(partition, text(entry), {text(k): text(v) for k, v in f.items()})
                    for entry, f in entries
                    if f
                ]
            return out
        # One XREADGROUP cannot span slots: one per partition, sent to all nodes at once. Run
        # as a script: redis-py's Cluster client routes EVALSHA by its keys, but asks the
        # server where a plain XREADGROUP goes (COMMAND GETKEYS) before each one.
        batch = Batch(self._redis)
        each = max(1, -(-count // keys.PARTITIONS))
        for partition in range(keys.PARTITIONS):
            batch.script(self._read, [self.stream(partition)], [self.group, consumer, each])
        found = [
            StreamEntry(partition, text(entry_id), _pairs(fields))
            for partition, answer in enumerate(await batch.execute())
            for entry_id, fields in answer or []
            if fields
        ]
        if found:
            self._quiet = 0
        else:
            await asyncio.sleep(min(POLL_S * 2**self._quiet, IDLE_POLL_S))
            self._quiet = min(self._quiet + 1, 8)
        return found

    async def claim_stale(self, consumer: str, min_idle_ms: int, count: int) -> list[StreamEntry]:
        """Entries another consumer took and never acknowledged (its process died), from every
        partition in one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        for partition in range(keys.PARTITIONS):
            pipe.xautoclaim(
                self.stream(partition),
                self.group,
                consumer,
                min_idle_ms,
                start_id="0-0",
                count=count,
            )
        out = []
        for partition, answer in enumerate(await pipe.execute()):
            claimed = answer[1] if len(answer) > 1 else []
            out += [
                StreamEntry(partition, text(entry), {text(k): text(v) for k, v in f.items()})
                for entry, f in claimed
                if f
            ]
        return out

    async def ack(self, entries: list[StreamEntry]) -> None:
        """Acknowledge and delete entries, one XACK and one XDEL per partition, one round
        trip in all."""
        by_partition: dict[int, list[str]] = {}
        for entry in entries:
            by_partition.setdefault(entry.partition, []).append(entry.id)
        if not by_partition:
            return
        pipe = self._redis.pipeline(transaction=False)
        for partition, ids in by_partition.items():
            pipe.xack(self.stream(partition), self.group, *ids)
            pipe.xdel(self.stream(partition), *ids)
        await pipe.execute()

    async def remove_consumers(self, min_idle_ms: int, only: str = "") -> list[str]:
        """Remove consumers (`only` that one) holding no pending entries and idle at least
        `min_idle_ms` from every partition's group; returns the names removed, one per
        group."""
        batch = Batch(self._redis)
        for partition in range(keys.PARTITIONS):
            batch.script(
                self._remove_idle, [self.stream(partition)], [self.group, min_idle_ms, only]
            )
        return [text(name) for removed in await batch.execute() for name in removed]

    async def oldest_ms(self) -> int | None:
        """When the oldest entry still in any partition's stream was added (None: all
        empty). Acknowledged entries are deleted, so this is the oldest not yet handled."""
        pipe = self._redis.pipeline(transaction=False)
        for partition in range(keys.PARTITIONS):
            pipe.xrange(self.stream(partition), "-", "+", count=1)
        found = [
            int(text(answer[0][0]).partition("-")[0]) for answer in await pipe.execute() if answer
        ]
        return min(found) if found else None

    async def length(self) -> int:
        """Entries in every partition's stream."""
        pipe = self._redis.pipeline(transaction=False)
        for partition in range(keys.PARTITIONS):
            pipe.xlen(self.stream(partition))
        return sum(int(n) for n in await pipe.execute())
