"""The drainer: copies every change from Redis to the record, and retires what it holds.

It runs in every router process (`router.app`), one consumer of the group `record` on every
partition's change stream (`router.store.changes`). Each batch:

1. the entries' objects, each once, are read as Redis holds them now (one round trip);
2. in ONE transaction, every row is upserted with a multi-row INSERT ... ON CONFLICT (id) DO
   UPDATE ... WHERE version < the new version (so a row never goes back, whatever order
   batches commit in), events' delivery attempts are inserted if new, self-contained entries
   (merchants, API keys' metadata, channel notifications) written, and `write_postings` is
   called with the drained rows;
3. final objects are scheduled to leave Redis after `PAYROUTER_REDIS_RETENTION`;
4. the entries are acknowledged and deleted.

Order per object holds because each upsert writes the object's current state and never lowers
its version; a change read twice (a redelivery, a batch retried after a crash) writes nothing
new. A process that dies mid-batch leaves its entries pending: another claims them (XAUTOCLAIM)
once idle for `claim_idle_s`. When the database cannot be reached the drainer keeps its batch,
backs off and tries again: the API goes on from Redis, the lag grows, nothing is lost.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from router.outage import StoreOutage
from router.record import Record
from router.record.postings import post_state_changes
from router.record.rows import attempt_rows, event_row, payment_row, refund_row, version_of
from router.record.schema import api_keys, event_attempts, events, merchants, payments, refunds
from router.record.writes import insert_new, insert_notifications, update_expiry, upsert
from router.runtime import Runtime
from router.store.changes import KINDS, ROW_KINDS, Loaded, Retiring
from router.store.codec import decode_fields
from router.store.errors import STORE_UNAVAILABLE, missing_stream_group
from router.store.streams import StreamEntry

log = logging.getLogger("payrouter.record")
BATCH = 500
"""Change entries one pass reads and drains at once."""
BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)
"""Waits before each new try of a batch the database refused or could not take."""
RETIRE_S = 1.0
"""How often the retention schedule is looked at (64 reads, one per partition)."""
LINGER_S = 0.1
"""After a batch smaller than `BATCH`, the wait before reading again: changes gather into
larger batches (fewer acknowledgements, one read of a payment changed twice), for a lag this
much longer."""
REFUSALS = 3
"""Tries of a batch the record refuses (a constraint, not an outage) before it is drained
entry by entry."""
PRUNE_AFTER_IDLE = 10
"""A consumer idle this many claim periods with nothing pending belongs to a dead process."""
RETIRE_LEASE_MS = 30_000
RETIRE_LIMIT = 512
RETIRE_ROUNDS = 40
"""Claims one retention sweep makes at most: 40 × 512 objects per `RETIRE_S`, about 10,000
payments a second per process (each with its event), and a bound on how long a sweep holds
the drain back."""
FINAL_PAYMENT = frozenset({"succeeded", "failed", "closed"})
FINAL_REFUND = frozenset({"succeeded", "failed"})
RETIRED_EVENT = frozenset({"delivered", "no_endpoint"})
"""Dead letters stay in Redis, where the merchant resends them from."""


@dataclass
class Drained:
    """The rows one batch wrote, by table: what `write_postings` reads."""

    payments: list[dict[str, Any]] = field(default_factory=list)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    merchants: list[dict[str, Any]] = field(default_factory=list)
    api_keys: list[dict[str, Any]] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    retiring: list[Retiring] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "payment": len(self.payments),
            "refund": len(self.refunds),
            "event": len(self.events),
            "merchant": len(self.merchants),
            "api_key": len(self.api_keys),
            "notification": len(self.notifications),
        }


async def write_postings(conn: AsyncConnection, drained: Drained) -> None:
    """The ledger's postings for the drained rows, in the drain's own transaction
    (`router.record.postings`): a payment that reached `succeeded`, a refund that succeeded;
    each once, however often and in whatever order its changes are drained."""
    await post_state_changes(conn, drained.payments, drained.refunds)


def _object_ids(entries: Sequence[StreamEntry]) -> list[tuple[str, str]]:
    """Each (kind, id) the entries name, once, in the order first named."""
    seen: dict[tuple[str, str], None] = {}
    for entry in entries:
        for kind in KINDS:
            if kind in entry.fields:
                seen[kind, entry.fields[kind]] = None
    return list(seen)


class Drainer:
    """One process's share of the drain, and of the retention sweep."""

    def __init__(
        self,
        rt: Runtime,
        record: Record,
        *,
        claim_idle_s: float | None = None,
        batch: int = BATCH,
    ) -> None:
        self.rt = rt
        self.record = record
        self.changes = rt.store.changes
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{random.randrange(1 << 30):x}"  # noqa: S311
        self.claim_idle_s = (
            rt.settings.webhook_claim_idle_s if claim_idle_s is None else claim_idle_s
        )
        self.batch = batch
        self.retire_s = RETIRE_S
        self.linger_s = LINGER_S
        self.outage = StoreOutage(log, "record drainer", rt.clock)
        self._grouped = False
        self._failures = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Drain until `stop` is set; a batch in hand is finished (or left pending) first."""
        last_retire = last_claim = last_prune = float("-inf")
        while not stop.is_set():
            try:
                if not self._grouped:
                    await self.changes.reader.ensure_groups()
                    self._grouped = True
                entries: list[StreamEntry] = []
                now = self.rt.clock.monotonic()
                if now - last_retire >= self.retire_s:
                    last_retire = now
                    await self.retire()
                if now - last_claim >= self.claim_idle_s / 2:
                    # What a dead process took is idle at least `claim_idle_s`: looking twice
                    # as often finds it soon enough, for 64 reads.
                    last_claim = now
                    idle_ms = int(self.claim_idle_s * 1000)
                    entries = await self.changes.reader.claim_stale(self.consumer, idle_ms, 100)
                if now - last_prune >= self.claim_idle_s * PRUNE_AFTER_IDLE:
                    last_prune = now
                    await self._prune()
                if not entries:
                    entries = await self.changes.reader.read_new(
                        self.consumer, self.batch, spread=True
                    )
                if entries:
                    await self._until_drained(entries, stop)
                    if len(entries) < self.batch:
                        await _wait(stop, self.linger_s)
                self.outage.recovered()
            except STORE_UNAVAILABLE as exc:
                self.outage.failed(exc)
                await _wait(stop, 1.0)
            except Exception as exc:
                if missing_stream_group(exc):
                    log.warning("record change group missing, creating it again: %s", exc)
                    self._grouped = False
                else:
                    log.exception("record drain pass failed; retrying")
                await _wait(stop, 1.0)

    async def _prune(self) -> None:
        """Remove the consumers of processes that died: long idle and holding nothing (what
        a dead process held is claimed first)."""
        idle_ms = int(self.claim_idle_s * 1000 * PRUNE_AFTER_IDLE)
        removed = await self.changes.reader.remove_consumers(idle_ms)
        if removed:
            log.info("removed idle record consumers: %s", ", ".join(sorted(set(removed))))

    async def close(self) -> None:
        """Leave the consumer groups where this process holds nothing pending."""
        try:
            await self.changes.reader.remove_consumers(0, only=self.consumer)
        except Exception as exc:
            log.warning("record consumer %s not removed: %s", self.consumer, exc)

    async def _until_drained(self, entries: list[StreamEntry], stop: asyncio.Event) -> None:
        """Drain the batch, trying again with backoff while the database fails; on `stop`
        the batch stays pending for another process (or this one's next start)."""
        refused = 0
        while True:
            try:
                await self.drain(entries)
            except (IntegrityError, DataError) as exc:
                # The rows, not the database: a change whose object the record cannot take
                # yet (its payment still in another process's batch) goes through on a later
                # try; one it never takes must not hold every change behind it.
                refused += 1
                if refused >= REFUSALS:
                    await self._one_by_one(entries, stop, exc)
                    return
                self.rt.metrics.record_drain_errors.inc()
                if await _wait(stop, BACKOFF_S[min(refused, len(BACKOFF_S) - 1)]):
                    return
                continue
            except (SQLAlchemyError, OSError) as exc:
                self.rt.metrics.record_drain_errors.inc()
                wait = BACKOFF_S[min(self._failures, len(BACKOFF_S) - 1)]
                if self._failures == 0:
                    log.warning("record: cannot write a drained batch, trying again: %s", exc)
                self._failures += 1
                if await _wait(stop, wait):
                    return
                continue
            if self._failures:
                log.info("record: writing again after %d failed tries", self._failures)
                self._failures = 0
            return

    async def _one_by_one(
        self, entries: list[StreamEntry], stop: asyncio.Event, exc: Exception
    ) -> None:
        """A batch the record keeps refusing: each entry alone; one refused alone is reported
        (`payrouter_store_unreadable_records_total`), logged, and acknowledged."""
        if len(entries) > 1:
            for entry in entries:
                await self._until_drained([entry], stop)
            return
        entry = entries[0]
        named = ", ".join(f"{k}={v}" for k, v in entry.fields.items() if k in KINDS) or "a row"
        self.rt.metrics.record_drain_errors.inc()
        self.rt.damaged.report("change", entry.id, f"{named} refused by the record: {exc}")
        log.error("record: change %s (%s) refused, skipped: %s", entry.id, named, exc)
        await self.changes.reader.ack([entry])

    async def drain(self, entries: Sequence[StreamEntry]) -> Drained:
        """Copy the objects the entries name to the record, schedule the final ones to leave
        Redis and acknowledge the entries. Raises the database's error (nothing acknowledged)."""
        objects = _object_ids(entries)
        loaded = await self.changes.load(objects)
        drained = self._rows(loaded, entries)
        async with self.record.engine.begin() as conn:
            await upsert(conn, payments, drained.payments)
            await upsert(conn, refunds, drained.refunds)
            await upsert(conn, events, drained.events)
            await insert_new(conn, event_attempts, drained.attempts)
            await upsert(conn, merchants, drained.merchants)
            await insert_new(conn, api_keys, drained.api_keys)
            if drained.api_keys:
                await update_expiry(conn, drained.api_keys)
            await insert_notifications(conn, drained.notifications)
            await write_postings(conn, drained)
        await self.changes.schedule_retire(drained.retiring)
        await self.changes.reader.ack(list(entries))
        metrics = self.rt.metrics
        metrics.record_batch.observe(len(entries))
        for kind, count in drained.counts().items():
            if count:
                metrics.record_drained.labels(kind).inc(count)
        return drained

    def _rows(
        self, loaded: dict[tuple[str, str], Loaded], entries: Sequence[StreamEntry]
    ) -> Drained:
        now_ms = self.rt.clock.now_ms()
        due_ms = now_ms + int(self.rt.settings.redis_retention_s * 1000)
        out = Drained()
        for (kind, object_id), found in loaded.items():
            raw = found.raw
            if not raw or "id" not in raw:
                # Gone: retired (the record has it) or never complete; nothing to copy.
                continue
            try:
                if kind == "pay":
                    row = payment_row(raw, now_ms)
                    out.payments.append(row)
                    values = decode_fields(
                        {k: raw[k] for k in ("amount_reserved", "amount_refunded") if k in raw}
                    )
                    settled = values.get("amount_reserved", 0) == values.get("amount_refunded", 0)
                    if row["status"] in FINAL_PAYMENT and settled:
                        out.retiring.append(
                            Retiring(
                                "pay",
                                object_id,
                                row["version"],
                                row["merchant_id"],
                                row["merchant_order_id"],
                                due_ms,
                            )
                        )
                elif kind == "re":
                    row = refund_row(raw, now_ms)
                    out.refunds.append(row)
                    if row["status"] in FINAL_REFUND:
                        out.retiring.append(
                            Retiring(
                                "re", object_id, row["version"], row["merchant_id"], "", due_ms
                            )
                        )
                else:
                    row = event_row(raw, now_ms)
                    out.events.append(row)
                    out.attempts += attempt_rows(object_id, found.attempts)
                    if row["state"] in RETIRED_EVENT:
                        out.retiring.append(
                            Retiring(
                                "evt", object_id, version_of(raw), row["merchant_id"], "", due_ms
                            )
                        )
            except (KeyError, ValueError, TypeError) as exc:
                # A record Redis holds damaged: reported, and left out rather than block
                # every change behind it.
                self.rt.damaged.report(kind, object_id, f"not copied to the record: {exc!r}")
        for entry in entries:
            for kind in ROW_KINDS:
                if kind in entry.fields:
                    row = json.loads(entry.fields[kind])
                    if kind == "mch":
                        out.merchants.append(row)
                    elif kind == "key":
                        out.api_keys.append(row)
                    else:
                        row["body"] = bytes.fromhex(row.pop("body_hex"))
                        out.notifications.append(row)
        return out

    async def retire(self) -> dict[str, int]:
        """Remove from Redis the recorded final objects whose retention is over.

        One claim takes `RETIRE_LIMIT` at most; while claims come back at least half full,
        more is due and another follows (up to `RETIRE_ROUNDS`): one claim per `retire_s`
        would retire about 100 objects a second, two per payment, far below what one process
        creates, and Redis would grow without bound (`benchmarks/redis_memory.py`)."""
        total: dict[str, int] = {}
        for _ in range(RETIRE_ROUNDS):
            gone = await self.changes.retire_due(
                self.rt.clock.now_ms(), RETIRE_LEASE_MS, RETIRE_LIMIT
            )
            for kind, count in gone.items():
                self.rt.metrics.record_retired.labels(kind).inc(count)
                total[kind] = total.get(kind, 0) + count
            if sum(gone.values()) < RETIRE_LIMIT // 2:
                break
        return total


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep `seconds` or until `stop`; True if stopped."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True


async def set_lag(rt: Runtime) -> None:
    """`payrouter_record_lag_seconds`, from the oldest entry left in the change streams."""
    oldest = await rt.store.changes.reader.oldest_ms()
    lag = 0.0 if oldest is None else max(0.0, (rt.clock.now_ms() - oldest) / 1000)
    rt.metrics.record_lag.set(lag)


__all__ = ["Drained", "Drainer", "set_lag", "upsert", "write_postings"]
