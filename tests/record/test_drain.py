"""The drainer against a real Redis (one server and a Cluster) and both databases: order,
idempotency, a drainer killed mid-batch, and versions that never go back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from router.clock import Clock, FrozenClock, rfc3339
from router.metrics import Metrics
from router.record import Record
from router.record.drain import Drainer, upsert
from router.record.rows import stored_event, stored_payment, stored_refund
from router.record.schema import api_keys, event_attempts, events, merchants, payments, refunds
from router.settings import Settings
from router.store import Store, open_store
from router.store.changes import GROUP
from router.store.streams import StreamEntry
from tests.router.conftest import MCH, payment
from tests.router.test_refund_store import refund

pytestmark = pytest.mark.every_topology


class FakeRuntime:
    """What the drainer reads of a router's runtime: the store, clock, settings, metrics."""

    def __init__(self, store: Store, clock: Clock) -> None:
        from router.damaged import DamagedRecords

        self.store = store
        self.clock = clock
        self.settings = Settings(redis_retention_s=3600.0)
        self.metrics = Metrics()
        self.damaged = DamagedRecords(self.metrics)


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[Store]:
    opened = await open_store(redis_url, Clock())
    await opened.changes.reader.ensure_groups()
    yield opened
    await opened.close()


def drainer(store: Store, record: Record) -> Drainer:
    return Drainer(FakeRuntime(store, Clock()), record, claim_idle_s=0.0)  # type: ignore[arg-type]


async def rows(record: Record, table: Any) -> dict[str, dict[str, Any]]:
    async with record.engine.connect() as conn:
        found = await conn.execute(select(table))
        return {row.id: dict(row._mapping) for row in found}


async def read_all(d: Drainer) -> list[StreamEntry]:
    out: list[StreamEntry] = []
    while batch := await d.changes.reader.read_new(d.consumer, 1000):
        out += batch
    return out


async def history(store: Store, clock: FrozenClock) -> tuple[str, str, str]:
    """A payment paid and partly refunded, its events delivered: (payment, refund, event)."""
    p = payment(clock)
    await store.payments.create(p, 0)
    await store.payments.transition(p, "pending", {"channel_trade_no": "T1"})
    await store.payments.transition(p, "succeeded", {"paid_at": rfc3339(clock.utcnow())})
    r = refund(p.payment.id, clock, mrid="R1")
    await store.refunds.create(r, 500, 0)
    await store.refunds.transition(r, "succeeded", {"succeeded_at": rfc3339(clock.utcnow())})
    first = (await store.events.page(MCH, limit=10, starting_after=None, type_=None)).events
    evt = next(e for e in first if e.type == "payment.succeeded")
    attempt = {"at": rfc3339(clock.utcnow()), "url": "http://x/h", "status": 200, "ms": 3}
    await store.events.record_attempt(evt, attempt | {"error": None})
    await store.events.set_state(evt, "delivered")
    return p.payment.id, r.refund.id, evt.id


async def same_answers(store: Store, record: Record, pay_id: str, re_id: str, evt_id: str) -> None:
    """Every object reads back from the record exactly as Redis has it."""
    pays, res, evts = (
        await rows(record, payments),
        await rows(record, refunds),
        await rows(record, events),
    )
    live_pay = await store.payments.find(pay_id)
    live_re = await store.refunds.find(re_id)
    live_evt = await store.events.get(MCH, evt_id)
    assert live_pay is not None and live_re is not None and live_evt is not None
    assert stored_payment(pays[pay_id]).payment.model_dump_json() == (
        live_pay.payment.model_dump_json()
    )
    assert stored_refund(res[re_id]).refund.model_dump_json() == live_re.refund.model_dump_json()
    from_record = stored_event(evts[evt_id])
    assert from_record.body() == live_evt.body()
    assert from_record.state == live_evt.state == "delivered"


async def test_a_drain_copies_each_object_at_its_latest_version(
    store: Store, migrated: Record
) -> None:
    clock = FrozenClock()
    pay_id, re_id, evt_id = await history(store, clock)
    d = drainer(store, migrated)
    entries = await read_all(d)
    drained = await d.drain(entries)
    # The payment changed five times, but is written once, at its latest version.
    assert [r["id"] for r in drained.payments] == [pay_id]
    raw = await store.redis.hgetall(f"{store_key(pay_id)}")
    pays = await rows(migrated, payments)
    assert pays[pay_id]["version"] == int(raw["v"]) == 5
    assert pays[pay_id]["status"] == "succeeded" and pays[pay_id]["amount_refunded"] == 500
    emitted = await store.events.get(MCH, evt_id)
    assert emitted is not None and "v" not in emitted.data
    await same_answers(store, migrated, pay_id, re_id, evt_id)
    async with migrated.engine.connect() as conn:
        tried = (await conn.execute(select(event_attempts))).all()
    assert [(a.event_id, a.number, a.http_status) for a in tried] == [(evt_id, 1, 200)]
    # Acknowledged and deleted: nothing is left to drain or pending.
    assert await store.changes.reader.length() == 0
    assert await read_all(d) == []
    assert d.rt.metrics.record_drained.labels("payment")._value.get() == 1


async def test_the_same_changes_twice_or_out_of_order_change_nothing(
    store: Store, migrated: Record
) -> None:
    clock = FrozenClock()
    pay_id, re_id, evt_id = await history(store, clock)
    d = drainer(store, migrated)
    entries = await read_all(d)
    for entry in reversed(entries):
        await d.drain([entry])
    before = (await rows(migrated, payments), await rows(migrated, refunds))
    await d.drain(entries)
    await d.drain(entries[:1])
    after = (await rows(migrated, payments), await rows(migrated, refunds))
    strip = [
        {k: {c: v for c, v in r.items() if c != "updated_ms"} for k, r in t.items()} for t in before
    ]
    assert strip == [
        {k: {c: v for c, v in r.items() if c != "updated_ms"} for k, r in t.items()} for t in after
    ]
    # An older state arriving late never lowers a row.
    old = dict(after[0][pay_id]) | {"version": 1, "status": "processing"}
    async with migrated.engine.begin() as conn:
        await upsert(conn, payments, [old])
    assert (await rows(migrated, payments))[pay_id]["status"] == "succeeded"
    async with migrated.engine.connect() as conn:
        assert len((await conn.execute(select(event_attempts))).all()) == 1
    await same_answers(store, migrated, pay_id, re_id, evt_id)


async def test_a_batch_left_by_a_killed_drainer_is_taken_over(
    store: Store, migrated: Record
) -> None:
    clock = FrozenClock()
    pay_id, re_id, evt_id = await history(store, clock)
    dead = drainer(store, migrated)
    taken = await read_all(dead)  # read, then "killed": never drained nor acknowledged
    assert taken
    alive = drainer(store, migrated)
    assert await read_all(alive) == []
    claimed = await alive.changes.reader.claim_stale(alive.consumer, 0, 1000)
    assert sorted(e.id for e in claimed) == sorted(e.id for e in taken)
    await alive.drain(claimed)
    await same_answers(store, migrated, pay_id, re_id, evt_id)
    assert await store.changes.reader.length() == 0
    info = await store.redis.xinfo_groups(store_changes(pay_id))
    assert [g["pending"] for g in info if g["name"] == GROUP] == [0]
    # The dead process's consumer, holding nothing now, is removed from every group.
    await alive._prune()
    consumers = await store.redis.xinfo_consumers(store_changes(pay_id), GROUP)
    assert dead.consumer not in {c["name"] for c in consumers}


def store_key(pay_id: str) -> str:
    from router.store import keys

    return keys.payment(pay_id)


def store_changes(pay_id: str) -> str:
    from router.store import keys

    return keys.changes(keys.partition_of(pay_id))


async def test_merchants_and_key_metadata_reach_the_record_without_secrets(
    store: Store, migrated: Record
) -> None:
    merchant, issued = await store.merchants.create("Shop", notify_url="https://shop.example/h")
    await store.merchants.update(merchant.id, require_signed=True)
    rotated = await store.merchants.rotate(merchant.id, "test", 60)
    d = drainer(store, migrated)
    for entry in await read_all(d):
        await d.drain([entry])  # one by one: the later profile wins, whatever the order
    shops = await rows(migrated, merchants)
    assert shops[merchant.id]["require_signed"] is True
    assert shops[merchant.id]["notify_url"] == "https://shop.example/h"
    found = await rows(migrated, api_keys)
    assert set(found) == {issued.key.id, rotated.key.id}
    assert found[issued.key.id]["expires_ms"] is not None
    assert found[rotated.key.id]["expires_ms"] is None
    dumped = repr(found)
    assert issued.secret not in dumped and rotated.secret not in dumped
    assert set(found[issued.key.id]) == {"id", "merchant_id", "mode", "created_ms", "expires_ms"}


async def test_retention_removes_only_what_the_record_holds_at_that_version(
    store: Store, migrated: Record
) -> None:
    clock = FrozenClock()
    pay_id, re_id, evt_id = await history(store, clock)
    d = drainer(store, migrated)
    d.rt.settings = Settings(redis_retention_s=60.0)
    drained = await d.drain(await read_all(d))
    kinds = sorted(r.kind for r in drained.retiring)
    assert kinds == ["evt", "pay", "re"]
    # A change after it was recorded (a new refund, pending) keeps the payment in Redis.
    paid = await store.payments.find(pay_id)
    assert paid is not None
    late = refund(pay_id, clock, mrid="R2")
    await store.refunds.create(late, 100, 0)
    assert await d.retire() == {}  # not due yet
    d.rt.clock = FrozenClock(clock.now() + 61)
    gone = await d.retire()
    assert gone == {"re": 1, "evt": 1}
    assert await store.payments.find(pay_id) is not None
    assert await store.refunds.find(re_id) is None
    assert await store.events.get(MCH, evt_id) is None
    # The refund that left is still named by its payment: the same request meets it.
    again = await store.refunds.create(refund(pay_id, clock, mrid="R1"), 500, 0)
    assert (again.outcome, again.value) == ("exists", re_id)
    # Once the late refund is final and recorded, the payment and its order go too.
    await store.refunds.transition(late, "failed", {})
    await d.drain(await read_all(d))
    d.rt.clock = FrozenClock(clock.now() + 200)
    assert (await d.retire()).get("pay") == 1
    assert await store.payments.find(pay_id) is None
    # Its order hash held no other payment: it left with it (the record answers for it).
    assert not await store.redis.exists(store_order("A1"))


def store_order(merchant_order_id: str) -> str:
    from router.store import keys

    return keys.order(MCH, merchant_order_id)


async def test_the_sandbox_store_drains_too(tmp_path: Any) -> None:
    """`payrouter dev` without Redis: the embedded store and the embedded database."""
    from router.record import open_record

    embedded = await open_store(None, Clock())
    record = await open_record(None, tmp_path)
    await record.migrate()
    try:
        await embedded.changes.reader.ensure_groups()
        pay_id, re_id, evt_id = await history(embedded, FrozenClock())
        d = drainer(embedded, record)
        await d.drain(await read_all(d))
        await same_answers(embedded, record, pay_id, re_id, evt_id)
    finally:
        await record.close()
        await embedded.close()


async def test_a_change_the_record_refuses_is_skipped_not_blocking(
    store: Store, migrated: Record, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from router.record import drain
    from router.store import keys

    monkeypatch.setattr(drain, "BACKOFF_S", (0.0,))
    clock = FrozenClock()
    pay_id, re_id, evt_id = await history(store, clock)
    bad = payment(clock, moid="B1")
    await store.payments.create(bad, 0)
    # Damaged by hand: more refunded than paid, which the record's constraint refuses.
    await store.redis.hset(keys.payment(bad.payment.id), "amount_refunded", "999999")
    d = drainer(store, migrated)
    await d._until_drained(await read_all(d), asyncio.Event())
    await same_answers(store, migrated, pay_id, re_id, evt_id)
    assert bad.payment.id not in await rows(migrated, payments)
    assert await store.changes.reader.length() == 0
    assert d.rt.metrics.unreadable_records.labels("change")._value.get() == 1


async def test_one_sweep_retires_more_than_one_claim_holds(
    store: Store, migrated: Record, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One claim of RETIRE_LIMIT per sweep retired about 100 objects a second: at a steady
    # create rate above that, Redis grew without bound (benchmarks/redis_memory.py).
    from benchmarks.drain_throughput import paid
    from router.record import drain as drain_module

    monkeypatch.setattr(drain_module, "RETIRE_LIMIT", 64)
    clock = FrozenClock(Clock().now())
    for first in range(0, 200, 20):
        await asyncio.gather(*(paid(store, clock, n) for n in range(first, first + 20)))
    d = drainer(store, migrated)
    d.rt.clock = clock
    d.rt.settings = Settings(redis_retention_s=60.0)
    drained = await d.drain(await read_all(d))
    assert len(drained.retiring) == 200
    clock.advance(61)
    gone = await d.retire()
    assert 64 < gone["pay"] <= 200, gone
