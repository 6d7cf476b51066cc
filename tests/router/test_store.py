"""The Redis store's scripts, on a real redis-server and on the embedded store alike."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import ResponseError

from router.clock import FrozenClock
from router.models import Payment
from router.store import Replication, Store, keys, open_store
from router.store.batch import Atomic, atomic_script
from router.store.payments import Creation
from router.store.schedule import Due
from tests.router.conftest import MCH, payment


async def test_create_holds_the_merchant_order_id(store: Store, clock: FrozenClock) -> None:
    first = payment(clock)
    assert await store.payments.create(first, 0) == Creation("created", first.payment.id)
    second = payment(clock)
    assert await store.payments.create(second, 0) == Creation("held", first.payment.id)
    assert await store.payments.get(MCH, second.payment.id) is None
    loaded = await store.payments.get(MCH, first.payment.id)
    assert loaded is not None and loaded.payment == first.payment
    # Found by its id alone (a channel callback), and by no other merchant.
    found = await store.payments.find(first.payment.id)
    assert found is not None and found.merchant_id == MCH
    assert await store.payments.get("mch_someoneelse1", first.payment.id) is None


async def test_status_never_moves_backwards(store: Store, clock: FrozenClock) -> None:
    p = payment(clock)
    await store.payments.create(p, 0)
    assert await store.payments.transition(p, "pending", {"channel_trade_no": "T1"}) == (
        True,
        "pending",
    )
    assert await store.payments.transition(p, "processing", {}) == (False, "pending")
    assert await store.payments.transition(p, "succeeded", {"paid_at": "x"}) == (True, "succeeded")
    for later in ("closed", "failed", "pending", "succeeded"):
        assert await store.payments.transition(p, later, {"paid_at": "y"}) == (False, "succeeded")
    loaded = await store.payments.get(MCH, p.payment.id)
    assert loaded is not None
    assert loaded.payment.paid_at == "x"
    assert loaded.payment.channel_trade_no == "T1"


async def test_required_status_guards_the_transition(store: Store, clock: FrozenClock) -> None:
    p = payment(clock)
    await store.payments.create(p, 0)
    assert await store.payments.transition(p, "closed", {}, require="pending") == (
        False,
        "processing",
    )
    assert await store.payments.transition(p, "pending", {}, require="processing") == (
        True,
        "pending",
    )


async def test_failed_payment_releases_its_order_id(store: Store, clock: FrozenClock) -> None:
    p = payment(clock)
    await store.payments.create(p, 0)
    await store.payments.transition(p, "failed", {"failure": {"code": "X", "message": "m"}})
    again = payment(clock)
    assert await store.payments.create(again, 0) == Creation("created", again.payment.id)
    page, _ = await store.payments.page(MCH, limit=10, merchant_order_id="A1")
    assert {s.payment.id for s in page} == {p.payment.id, again.payment.id}


async def test_closed_payment_keeps_its_order_id(store: Store, clock: FrozenClock) -> None:
    p = payment(clock)
    await store.payments.create(p, 0)
    await store.payments.transition(p, "closed", {})
    assert await store.payments.create(payment(clock), 0) == Creation("held", p.payment.id)


async def test_concurrent_transitions_apply_once(store: Store, clock: FrozenClock) -> None:
    p = payment(clock)
    await store.payments.create(p, 0)
    results = await asyncio.gather(
        *(store.payments.transition(p, s, {}) for s in ["succeeded", "closed", "failed"] * 10)
    )
    assert sum(applied for applied, _ in results) == 1


async def test_pagination_is_stable_with_equal_timestamps(store: Store, clock: FrozenClock) -> None:
    created = [payment(clock, moid=f"O{i}", created_ms=1000 + i // 5) for i in range(23)]
    for p in created:
        await store.payments.create(p, 0)
    seen: list[str] = []
    cursor = None
    while True:
        page, has_more = await store.payments.page(MCH, limit=4, starting_after=cursor)
        seen += [s.payment.id for s in page]
        if not has_more:
            break
        cursor = page[-1]
    expected = sorted(created, key=lambda s: (s.created_ms, s.payment.id), reverse=True)
    assert seen == [s.payment.id for s in expected]


async def test_list_filters(store: Store, clock: FrozenClock) -> None:
    items = [payment(clock, moid=f"O{i}", created_ms=1000 + i) for i in range(10)]
    for p in items:
        await store.payments.create(p, 0)
    for p in items[::2]:
        await store.payments.transition(p, "pending", {})
    page, has_more = await store.payments.page(MCH, limit=100, status="pending")
    assert [s.payment.id for s in page] == [p.payment.id for p in reversed(items[::2])]
    assert not has_more
    page, _ = await store.payments.page(MCH, limit=100, created_gte_ms=1003, created_lt_ms=1006)
    assert [s.created_ms for s in page] == [1005, 1004, 1003]


async def test_idempotency_lifecycle(store: Store, clock: FrozenClock) -> None:
    idem = store.idempotency
    assert (await idem.begin(MCH, "k1", "fp", "t1")).outcome == "new"
    assert (await idem.begin(MCH, "k1", "fp", "t2")).outcome == "in_flight"
    assert (await idem.begin(MCH, "k1", "other", "t2")).outcome == "mismatch"
    await idem.finish(MCH, "k1", "t1", 201, '{"id": "pay_1"}')
    replay = await idem.begin(MCH, "k1", "fp", "t3")
    assert (replay.outcome, replay.status, replay.body) == ("replay", 201, '{"id": "pay_1"}')


async def test_idempotency_lease_lets_a_retry_take_over(store: Store, clock: FrozenClock) -> None:
    idem = store.idempotency
    assert (await idem.begin(MCH, "k2", "fp", "dead")).outcome == "new"
    clock.advance(61)
    assert (await idem.begin(MCH, "k2", "fp", "alive")).outcome == "new"
    # The process that lost its lease cannot overwrite the new owner's answer.
    await idem.finish(MCH, "k2", "dead", 500, "late")
    assert (await idem.begin(MCH, "k2", "fp", "x")).outcome == "in_flight"


async def test_idempotency_release_allows_a_rerun(store: Store, clock: FrozenClock) -> None:
    idem = store.idempotency
    await idem.begin(MCH, "k3", "fp", "t1")
    await idem.release(MCH, "k3", "t1")
    assert (await idem.begin(MCH, "k3", "fp", "t2")).outcome == "new"


async def test_schedule_claims_are_leased(store: Store, clock: FrozenClock) -> None:
    await store.schedule.put(MCH, "pay_a", 1000)
    await store.schedule.put(MCH, "pay_b", 5000)
    assert await store.schedule.claim(2000, 60_000, 10) == [Due("payment", MCH, "pay_a")]
    assert await store.schedule.claim(2000, 60_000, 10) == []
    again = await store.schedule.claim(62_001, 60_000, 10)
    assert sorted(d.object_id for d in again) == ["pay_a", "pay_b"]
    await store.schedule.done(MCH, "pay_a")
    assert await store.schedule.due_at(MCH, "pay_a") is None


async def test_keys_hash_secrets_and_rotate(store: Store, clock: FrozenClock) -> None:
    merchant, issued = await store.merchants.create("Shop")
    assert issued.secret.startswith("sk_test_")
    dump = str(await store.redis.hgetall(f"pr:key:{issued.key.id}"))
    assert issued.secret not in dump
    found = await store.merchants.key_for_secret(issued.secret)
    assert found is not None and found.merchant_id == merchant.id
    assert await store.merchants.signing_secret(issued.key.id) == issued.secret
    rotated = await store.merchants.rotate(merchant.id, "test", grace_s=60)
    old = await store.merchants.key(issued.key.id)
    assert old is not None and old.active(clock.now_ms())
    clock.advance(61)
    assert not old.active(clock.now_ms())
    new = await store.merchants.key_for_secret(rotated.secret)
    assert new is not None and new.active(clock.now_ms())


async def test_embedded_store_refuses_live_keys(clock: FrozenClock) -> None:
    embedded = await open_store(None, clock)
    with pytest.raises(ValueError, match="test keys only"):
        await embedded.merchants.create("Shop", mode="live")
    await embedded.close()


async def test_final_status_writes_its_event_in_the_same_step(
    store: Store, clock: FrozenClock
) -> None:
    payments = [payment(clock, moid=f"E{i}", created_ms=1000 + i) for i in range(5)]
    for p in payments:
        await store.payments.create(p, 0)
        clock.advance(1)
        await store.payments.transition(p, "pending", {})
        await store.payments.transition(p, "succeeded", {"paid_at": "t"})
    # Non-final changes write no event; each final one writes exactly one.
    assert len((await store.events.page(MCH, limit=100, starting_after=None, type_=None))[0]) == 5
    seen: list[str] = []
    cursor = None
    while True:
        page, has_more, unreadable = await store.events.page(
            MCH, limit=2, starting_after=cursor, type_="payment.succeeded"
        )
        assert not unreadable
        seen += [e.data["id"] for e in page]
        if not has_more:
            break
        cursor = page[-1]
    assert seen == [p.payment.id for p in reversed(payments)]
    first = await store.events.get(MCH, page[-1].id)
    assert first is not None
    assert first.data["status"] == "succeeded"
    assert "merchant_id" not in first.data
    assert await store.events.pending_count() == 5


async def test_an_event_shows_none_of_the_payments_hidden_fields(
    store: Store, clock: FrozenClock
) -> None:
    """Whatever the router keeps beside a payment (a checkout's channel action, the accounts a
    failover left orders at, the refunds' reservation) stays out of its webhook's `data`."""
    p = payment(clock, moid="H1")
    await store.payments.create(p, 0)
    await store.payments.transition(
        p,
        "pending",
        {"abandoned": ["wechat_b"], "buyer_action": {"type": "none"}, "amount_reserved": 0},
    )
    await store.payments.transition(p, "succeeded", {"paid_at": "t"})
    page, _, _ = await store.events.page(MCH, limit=1, starting_after=None, type_=None)
    assert set(page[0].data) <= set(Payment.model_fields), set(page[0].data) - set(
        Payment.model_fields
    )


async def test_claimed_entries_say_what_they_are(store: Store, clock: FrozenClock) -> None:
    """The worker reads the kind from the entry (`Due.kind`): the schedule writes it into the
    member; a member that cannot be read leaves the schedule instead of being taken forever."""
    await store.schedule.put(MCH, "pay_a", 1000)
    await store.schedule.put(MCH, "re_b", 2000)
    await store.redis.zadd(keys.schedule(0), {"garbage": 500})
    due = await store.schedule.claim(3000, 60_000, 10)
    assert sorted((d.kind, d.merchant_id, d.object_id) for d in due) == [
        ("payment", MCH, "pay_a"),
        ("refund", MCH, "re_b"),
    ]
    assert await store.redis.zcard(keys.schedule(0)) == 0


async def test_a_create_can_wait_for_replicas(redis_url: str, clock: FrozenClock) -> None:
    """`PAYROUTER_REDIS_WAIT_REPLICAS`: the create's writes are followed by `WAIT` on the same
    connection; a server without replicas answers 0 once the wait times out."""
    store = await open_store(redis_url, clock, replication=Replication(1, 20))
    try:
        p = payment(clock)
        created = await store.payments.create(p, 0)
        assert (created.outcome, created.replicas) == ("created", 0)
        plain = await open_store(redis_url, clock)
        try:
            assert (await plain.payments.create(payment(clock, moid="A2"), 0)).replicas is None
        finally:
            await plain.close()
    finally:
        await store.close()


async def test_atomic_writes_apply_together_and_fail_like_a_multi(store: Store) -> None:
    """`atomic` replaces MULTI/EXEC (which redis-py's Cluster client runs through threads of
    their own): every write is applied in one step, and one that fails (a key of the wrong
    type) leaves the others applied and raises its error afterwards."""
    tag = "pr:{atomic-test}"
    script = atomic_script(store.redis)
    group = Atomic(store.redis, script)
    group.hset(f"{tag}:h", mapping={"state": "dead", "n": 1})
    group.hincrby(f"{tag}:h", "n", 2)
    group.zadd(f"{tag}:z", {"evt_a": 5})
    group.rpush(f"{tag}:l", "one", "two")
    assert await group.execute() == [2, 3, 1, 2]
    await store.redis.set(f"{tag}:s", "not a list")
    broken = Atomic(store.redis, script)
    broken.rpush(f"{tag}:s", "x")
    broken.hset(f"{tag}:h", "state", "retrying")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await broken.execute()
    assert await store.redis.hget(f"{tag}:h", "state") == "retrying"
