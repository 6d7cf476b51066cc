"""Idempotency records: leases that are announced and renewed, and payments and refunds bound
to their key where they are made, on a real redis-server and on the embedded store alike."""

from __future__ import annotations

from router.clock import FrozenClock
from router.store import Store
from router.store.payments import Creation
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
    assert await store.payments.create(p, 0, "k3") == Creation("created", p.payment.id)
    clock.advance(LEASE_MS / 1000)
    assert (await idem.begin(MCH, "k3", "fp", "retry", LEASE_MS)).outcome == "new"
    # The retry, making its own payment for the same order, meets the first one instead.
    assert await store.payments.create(payment(clock), 0, "k3") == Creation("made", p.payment.id)
    # The dead owner can neither renew nor answer for the key any more.
    assert not await idem.renew(MCH, "k3", "dead", LEASE_MS)
    await idem.finish(MCH, "k3", "dead", 201, "late")
    assert (await idem.begin(MCH, "k3", "fp", "third", LEASE_MS)).outcome == "in_flight"


async def test_a_stalled_create_meets_the_payment_of_the_attempt_that_took_over(
    store: Store, clock: FrozenClock
) -> None:
    """The attempt that stalled past its lease finds the payment its successor made, and
    cannot renew the key: it answers `409 idempotency_key_in_use` (`ensure_held`), the
    successor answers for the key."""
    idem = store.idempotency
    await idem.begin(MCH, "k4", "fp", "stalled", LEASE_MS)
    clock.advance(LEASE_MS / 1000)
    assert (await idem.begin(MCH, "k4", "fp", "retry", LEASE_MS)).outcome == "new"
    other = payment(clock)
    assert await store.payments.create(other, 0, "k4") == Creation("created", other.payment.id)
    late = payment(clock)
    assert await store.payments.create(late, 0, "k4") == Creation("made", other.payment.id)
    assert await store.payments.get(MCH, late.payment.id) is None
    assert not await idem.renew(MCH, "k4", "stalled", LEASE_MS)


async def test_a_released_key_stays_bound_to_a_payment_in_flux(
    store: Store, clock: FrozenClock
) -> None:
    """An answer that is not remembered (502 `channel_outcome_unknown`) frees the key at once,
    but a retry must answer about the payment still `processing`, not create another."""
    idem = store.idempotency
    await idem.begin(MCH, "k5", "fp", "t1", LEASE_MS)
    p = payment(clock, moid="A5")
    await store.payments.create(p, 0, "k5")
    await idem.release(MCH, "k5", "t1")
    assert (await idem.begin(MCH, "k5", "fp", "t2", LEASE_MS)).outcome == "new"
    again = payment(clock, moid="A5")
    assert await store.payments.create(again, 0, "k5") == Creation("made", p.payment.id)

    # A payment that failed before any channel had it (503: nothing was created) is unbound:
    # the retry makes a new one.
    await store.payments.transition(p, "failed", {})
    await store.payments.unbind(p, "k5")
    assert await store.payments.create(again, 0, "k5") == Creation("created", again.payment.id)


async def test_release_by_a_former_owner_changes_nothing(store: Store, clock: FrozenClock) -> None:
    idem = store.idempotency
    await idem.begin(MCH, "k6", "fp", "old", LEASE_MS)
    clock.advance(LEASE_MS / 1000)
    await idem.begin(MCH, "k6", "fp", "new", LEASE_MS)
    await idem.release(MCH, "k6", "old")
    assert (await idem.begin(MCH, "k6", "fp", "x", LEASE_MS)).outcome == "in_flight"


async def test_a_refund_made_under_a_key_is_met_by_every_retry_under_it(
    store: Store, clock: FrozenClock
) -> None:
    pay_id = await paid(store, clock)
    made = refund(pay_id, clock, key="k7")
    assert (await store.refunds.create(made, 100, 0)).outcome == "created"
    retry = await store.refunds.create(refund(pay_id, clock, key="k7"), 100, 0)
    assert (retry.outcome, retry.value) == ("exists", made.refund.id)
    other = refund(pay_id, clock, key="k8")
    assert (await store.refunds.create(other, 100, 0)).outcome == "created"
    page, _ = await store.refunds.of_payment(MCH, pay_id, limit=10, starting_after=None)
    assert {r.refund.id for r in page} == {made.refund.id, other.refund.id}
