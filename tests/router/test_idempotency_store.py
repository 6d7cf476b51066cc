"""Idempotency records: leases that are announced and renewed, and payments bound to their key,
on a real redis-server and on the embedded store alike."""

from __future__ import annotations

import pytest

from router.clock import FrozenClock
from router.store import Store
from router.store.idempotency import IdempotencyKeyLost
from tests.router.conftest import MCH, payment
from tests.router.test_refund_store import paid, refund

LEASE_MS = 10_000


async def test_a_key_in_use_says_how_long_it_stays_in_use(store: Store, clock: FrozenClock) -> None:
    idem = store.idempotency
    assert (await idem.begin(MCH, "k1", "fp", "t1", LEASE_MS)).outcome == "new"
    clock.advance(2.5)
    busy = await idem.begin(MCH, "k1", "fp", "t2", LEASE_MS)
    assert (busy.outcome, busy.retry_after_s) == ("in_flight", 8)
    clock.advance(7.4)
    assert (await idem.begin(MCH, "k1", "fp", "t2", LEASE_MS)).retry_after_s == 1


async def test_a_renewed_lease_is_not_taken_over(store: Store, clock: FrozenClock) -> None:
    idem = store.idempotency
    await idem.begin(MCH, "k2", "fp", "owner", LEASE_MS)
    for _ in range(5):
        clock.advance(LEASE_MS / 1000 / 3)
        assert await idem.renew(MCH, "k2", "owner", LEASE_MS)
    assert (await idem.begin(MCH, "k2", "fp", "retry", LEASE_MS)).outcome == "in_flight"
    assert not await idem.renew(MCH, "k2", "someone-else", LEASE_MS)


async def test_a_crashed_create_leaves_its_payment_bound_to_the_key(
    store: Store, clock: FrozenClock
) -> None:
    idem = store.idempotency
    await idem.begin(MCH, "k3", "fp", "dead", LEASE_MS)
    p = payment(clock)
    assert await store.payments.create(p, 0, ("k3", "dead")) == (True, p.payment.id)
    clock.advance(LEASE_MS / 1000)
    taken = await idem.begin(MCH, "k3", "fp", "retry", LEASE_MS)
    assert (taken.outcome, taken.bound) == ("resume", p.payment.id)
    # The dead owner can neither renew nor answer for the key any more.
    assert not await idem.renew(MCH, "k3", "dead", LEASE_MS)
    await idem.finish(MCH, "k3", "dead", 201, "late")
    assert (await idem.begin(MCH, "k3", "fp", "third", LEASE_MS)).outcome == "in_flight"


async def test_a_create_that_lost_its_key_writes_nothing(store: Store, clock: FrozenClock) -> None:
    idem = store.idempotency
    await idem.begin(MCH, "k4", "fp", "stalled", LEASE_MS)
    clock.advance(LEASE_MS / 1000)
    assert (await idem.begin(MCH, "k4", "fp", "retry", LEASE_MS)).outcome == "new"
    p = payment(clock)
    with pytest.raises(IdempotencyKeyLost):
        await store.payments.create(p, 0, ("k4", "stalled"))
    assert await store.payments.get(MCH, p.payment.id) is None
    other = payment(clock)
    assert await store.payments.create(other, 0, ("k4", "retry")) == (True, other.payment.id)


async def test_release_keeps_a_key_bound_to_a_payment_in_flux(
    store: Store, clock: FrozenClock
) -> None:
    """An answer that is not remembered (502 `channel_outcome_unknown`) frees the key at once,
    but a retry must answer about the payment still `processing`, not create another."""
    idem = store.idempotency
    await idem.begin(MCH, "k5", "fp", "t1", LEASE_MS)
    p = payment(clock, moid="A5")
    await store.payments.create(p, 0, ("k5", "t1"))
    await idem.release(MCH, "k5", "t1", p.payment.id)
    retry = await idem.begin(MCH, "k5", "fp", "t2", LEASE_MS)
    assert (retry.outcome, retry.bound) == ("resume", p.payment.id)

    # A failed payment (503 channel_unavailable: nothing was created) frees the key for good.
    await store.payments.transition(p, "failed", {})
    await idem.release(MCH, "k5", "t2", p.payment.id)
    again = await idem.begin(MCH, "k5", "fp", "t3", LEASE_MS)
    assert (again.outcome, again.bound) == ("new", None)


async def test_release_by_a_former_owner_changes_nothing(store: Store, clock: FrozenClock) -> None:
    idem = store.idempotency
    await idem.begin(MCH, "k6", "fp", "old", LEASE_MS)
    clock.advance(LEASE_MS / 1000)
    await idem.begin(MCH, "k6", "fp", "new", LEASE_MS)
    await idem.release(MCH, "k6", "old")
    assert (await idem.begin(MCH, "k6", "fp", "x", LEASE_MS)).outcome == "in_flight"


async def test_a_refund_is_bound_to_its_key_and_kept_bound_while_pending(
    store: Store, clock: FrozenClock
) -> None:
    idem = store.idempotency
    pay_id = await paid(store, clock)
    await idem.begin(MCH, "k7", "fp", "t1", LEASE_MS)
    first = refund(pay_id, clock)
    assert (await store.refunds.create(first, 100, 0, ("k7", "t1"))).outcome == "created"
    await idem.release(MCH, "k7", "t1", first.refund.id)
    retry = await idem.begin(MCH, "k7", "fp", "t2", LEASE_MS)
    assert (retry.outcome, retry.bound) == ("resume", first.refund.id)
    clock.advance(LEASE_MS / 1000)
    with pytest.raises(IdempotencyKeyLost):
        await store.refunds.create(refund(pay_id, clock), 100, 0, ("k7", "t1"))
    page, _ = await store.refunds.of_payment(MCH, pay_id, limit=10, starting_after=None)
    assert [r.refund.id for r in page] == [first.refund.id]
