"""`settlement.created`: one event per settlement, to the merchant's webhook endpoint through
the outbox payment events go through (`router.store.subject_events`).

Emitted after the settlement's transaction commits, so an event never names a settlement the
record does not hold. Emitting may fail after that (Redis down); every `settle run` of a day
therefore emits the event of each of the day's settlements that has none yet. "Has one" is
looked up by the event's id, derived from the settlement's: in Redis (the write itself skips
an event that is there) and in the record's `events` table (the drainer copies events there,
and an event that left Redis after PAYROUTER_REDIS_RETENTION is found there). Nothing else is
tracked, and a settlement is never announced twice.
"""

from __future__ import annotations

from typing import Any

from router.clock import Clock, from_ms, rfc3339
from router.record import Record
from router.record import settlements as rows
from router.settle.objects import settlement_object
from router.store import Store
from router.store.subject_events import emit_once, subject_event_id

SETTLEMENT_CREATED = "settlement.created"


async def announce(record: Record, store: Store, day: str, clock: Clock) -> list[str]:
    """Emit the missing `settlement.created` events of `day`'s settlements; the ids of the
    events written now. Raises the store's errors (`router.store.errors.STORE_UNAVAILABLE`)
    when Redis cannot take them: the next call writes what is still missing."""
    async with rows.reading(record) as conn:
        made = await rows.of_day(conn, day)
        wanted = {subject_event_id(SETTLEMENT_CREATED, r["id"]): r for r in made}
        recorded = await rows.recorded_events(conn, list(wanted))
    written: list[str] = []
    for evt_id, row in wanted.items():
        if evt_id in recorded:
            continue
        data: dict[str, Any] = settlement_object(row)
        now_ms = clock.now_ms()
        _, new = await emit_once(
            store.redis,
            row["merchant_id"],
            SETTLEMENT_CREATED,
            row["id"],
            data,
            at=rfc3339(from_ms(now_ms)),
            at_ms=now_ms,
        )
        if new:
            written.append(evt_id)
    return written
