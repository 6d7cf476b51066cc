"""The refund scripts: the running total can never exceed the payment, even under races."""

from __future__ import annotations

import asyncio

from router.clock import FrozenClock, rfc3339
from router.models import Refund
from router.store import Store
from router.store.refunds import RefundStore, StoredRefund
from tests.router.conftest import MCH, payment


def refund(
    pay_id: str, clock: FrozenClock, mrid: str | None = None, key: str | None = None
) -> StoredRefund:
    return StoredRefund(
        refund=Refund(
            id=RefundStore.refund_id(MCH, pay_id, mrid, key),
            payment=pay_id,
            amount=0,
            currency="CNY",
            status="pending",
            merchant_refund_id=mrid,
            created_at=rfc3339(clock.utcnow()),
            livemode=False,
        ),
        merchant_id=MCH,
        created_ms=clock.now_ms(),
    )


async def paid(store: Store, clock: FrozenClock) -> str:
    p = payment(clock)
    await store.payments.create(p, 0)
    await store.payments.transition(p, "succeeded", {"paid_at": rfc3339(clock.utcnow())})
    return p.payment.id


async def test_only_succeeded_payments_can_be_refunded(store: Store, clock: FrozenClock) -> None:
    p = payment(clock)
    await store.payments.create(p, 0)
    created = await store.refunds.create(refund(p.payment.id, clock), 100, 0)
    assert (created.outcome, created.value) == ("not_refundable", "processing")


async def test_concurrent_refunds_never_exceed_the_amount(store: Store, clock: FrozenClock) -> None:
    pay_id = await paid(store, clock)  # amount 1999
    results = await asyncio.gather(
        *(store.refunds.create(refund(pay_id, clock), 300, 0) for _ in range(20))
    )
    created = [r for r in results if r.outcome == "created"]
    assert len(created) == 6  # 6 × 300 = 1800 ≤ 1999 < 2100
    assert {r.value for r in results if r.outcome == "exceeds"} == {"199"}
    rest = await store.refunds.create(refund(pay_id, clock), None, 0)
    assert (rest.outcome, rest.value) == ("created", "199")
    nothing = await store.refunds.create(refund(pay_id, clock), None, 0)
    assert (nothing.outcome, nothing.value) == ("exceeds", "0")


async def test_refund_outcomes_move_the_totals(store: Store, clock: FrozenClock) -> None:
    pay_id = await paid(store, clock)
    ok, bad = refund(pay_id, clock), refund(pay_id, clock)
    assert (await store.refunds.create(ok, 1000, 0)).outcome == "created"
    assert (await store.refunds.create(bad, 999, 0)).outcome == "created"
    ok_loaded = await store.refunds.get(MCH, ok.refund.id)
    bad_loaded = await store.refunds.get(MCH, bad.refund.id)
    assert ok_loaded is not None
    assert bad_loaded is not None
    assert ok_loaded.refund.amount == 1000
    assert await store.refunds.transition(ok_loaded, "succeeded", {"succeeded_at": "t"}) == (
        True,
        "succeeded",
    )
    assert await store.refunds.transition(bad_loaded, "failed", {}) == (True, "failed")
    # Final states stay final.
    assert await store.refunds.transition(ok_loaded, "failed", {}) == (False, "succeeded")
    loaded = await store.payments.get(MCH, pay_id)
    assert loaded is not None
    assert loaded.payment.amount_refunded == 1000
    # The failed refund's 999 is refundable again; no more.
    assert (await store.refunds.create(refund(pay_id, clock), 1000, 0)).outcome == "exceeds"
    assert (await store.refunds.create(refund(pay_id, clock), 999, 0)).outcome == "created"


async def test_merchant_refund_id_is_idempotent(store: Store, clock: FrozenClock) -> None:
    pay_id = await paid(store, clock)
    first = refund(pay_id, clock, mrid="R-1")
    assert (await store.refunds.create(first, 100, 0)).outcome == "created"
    again = await store.refunds.create(refund(pay_id, clock, mrid="R-1"), 100, 0)
    assert (again.outcome, again.value) == ("exists", first.refund.id)
    page, has_more = await store.refunds.of_payment(MCH, pay_id, limit=10, starting_after=None)
    assert [s.refund.id for s in page] == [first.refund.id]
    assert not has_more


async def test_a_refund_remembers_what_was_left_and_keeps_it_internal(
    store: Store, clock: FrozenClock
) -> None:
    """`refundable_before` tells a repeated merchant_refund_id without an amount ("all that
    is left") from another request; it is the router's, never in a refund or an event."""
    pay_id = await paid(store, clock)  # amount 1999
    part, rest = refund(pay_id, clock, mrid="R-1"), refund(pay_id, clock, mrid="R-2")
    assert (await store.refunds.create(part, 500, 0)).outcome == "created"
    assert (await store.refunds.create(rest, None, 0)).outcome == "created"
    loaded = [await store.refunds.get(MCH, r.refund.id) for r in (part, rest)]
    assert [(s.refund.amount, s.refundable_before) for s in loaded if s] == [
        (500, 1999),
        (1499, 1499),
    ]
    assert loaded[1] is not None
    assert await store.refunds.transition(loaded[1], "succeeded", {"succeeded_at": "t"}) == (
        True,
        "succeeded",
    )
    events = (await store.events.page(MCH, limit=10, starting_after=None, type_=None)).events
    refund_event = next(e for e in events if e.type == "refund.succeeded")
    assert refund_event.data["amount"] == 1499
    assert "refundable_before" not in refund_event.data
