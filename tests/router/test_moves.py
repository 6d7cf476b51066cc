"""A final status is written, counted and taken off the schedule in one place
(`router.payments.moves`), and only when the move was applied."""

from __future__ import annotations

import re
from pathlib import Path

from router.clock import FrozenClock, rfc3339
from router.metrics import Metrics
from router.payments.moves import finish_payment, finish_refund
from router.store import Store
from tests.router.conftest import MCH, payment
from tests.router.test_refund_store import paid, refund

ROUTER = Path(__file__).parents[2] / "router"


async def test_an_applied_move_is_counted_and_unscheduled(store: Store, clock: FrozenClock) -> None:
    metrics = Metrics()
    p = payment(clock)
    await store.payments.create(p, clock.now_ms() + 5000)
    applied, now = await finish_payment(
        store, metrics, p, "failed", {}, source="requery", require="processing"
    )
    assert (applied, now) == (True, "failed")
    assert metrics.status_changes.labels("failed", "requery")._value.get() == 1
    assert await store.schedule.due_at(MCH, p.payment.id) is None


async def test_a_refused_move_leaves_the_other_writers_schedule(
    store: Store, clock: FrozenClock
) -> None:
    """A stranded create settled by the worker while the create itself finished `pending`:
    the payment keeps the entry the create gave it, so it is still re-queried and expired."""
    metrics = Metrics()
    p = payment(clock)
    await store.payments.create(p, 0)
    await store.payments.transition(p, "pending", {}, require="processing")
    await store.schedule.put(MCH, p.payment.id, 7000)
    applied, now = await finish_payment(
        store, metrics, p, "failed", {}, source="requery", require="processing"
    )
    assert (applied, now) == (False, "pending")
    assert metrics.status_changes.labels("failed", "requery")._value.get() == 0
    assert await store.schedule.due_at(MCH, p.payment.id) == 7000


async def test_a_refund_move_is_counted_once(store: Store, clock: FrozenClock) -> None:
    metrics = Metrics()
    r = refund(await paid(store, clock), clock)
    await store.refunds.create(r, 100, clock.now_ms() + 5000)
    fields = {"succeeded_at": rfc3339(clock.utcnow())}
    for _ in range(2):
        await finish_refund(store, metrics, r, "succeeded", fields, source="notification")
    assert metrics.refund_status_changes.labels("succeeded", "notification")._value.get() == 1
    assert await store.schedule.due_at(MCH, r.refund.id) is None


def test_status_changes_are_counted_in_one_place() -> None:
    """Elsewhere only the batched create counts its own move (one round trip)."""
    counted = re.compile(r"status_changes\.labels\(")
    found = {
        str(path.relative_to(ROUTER))
        for path in ROUTER.rglob("*.py")
        if counted.search(path.read_text())
    }
    assert found == {"payments/moves.py", "payments/service.py"}
    service = (ROUTER / "payments" / "service.py").read_text()
    assert len(counted.findall(service)) == 1
