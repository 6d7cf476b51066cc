"""Events about something other than a payment's state change (`settlement.created`): written
once per subject, on demand, into the same outbox the dispatcher delivers payment events from.

Such an event's id is derived from its type and subject, so writing it again (after a failure,
or by a second `settle run`) meets the first one instead of making another. Its record names
the subject in `payment_id`: every event record names the object it is about
(`router.store.events.REQUIRED`), and the dispatcher finds no payment by that id and sends it
to the merchant's default endpoint.
"""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis

from router.ids import derived_id
from router.store import keys
from router.store.scripts import EMIT_ONCE


def subject_event_id(type_: str, subject_id: str) -> str:
    """The id of the one event of `type_` about `subject_id`."""
    return derived_id("evt", keys.spread(type_, subject_id), type_, subject_id)


async def emit_once(
    redis: aioredis.Redis,
    mch: str,
    type_: str,
    subject_id: str,
    data: dict[str, Any],
    *,
    at: str,
    at_ms: int,
) -> tuple[str, bool]:
    """Write the event of `type_` about `subject_id` with its outbox and change-stream
    entries, unless Redis has it (`scripts.EMIT_ONCE`). The id, and whether it was written."""
    evt_id = subject_event_id(type_, subject_id)
    partition = keys.partition_of(evt_id)
    fields: list[str | int] = [
        "id", evt_id, "type", type_, "created_at", at, "created_ms", at_ms,
        "payment_id", subject_id, "merchant_id", mch, "data", json.dumps(data),
        "state", "pending", "attempt_count", 0, "v", 1,
    ]  # fmt: skip
    written = await redis.register_script(EMIT_ONCE)(
        keys=[
            keys.event(evt_id),
            keys.events(partition, mch),
            keys.outbox(partition),
            keys.changes(partition),
        ],
        args=[evt_id, at_ms, mch, *fields],
    )
    return evt_id, bool(int(written))
