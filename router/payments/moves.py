"""A payment or refund reaching a final status: the one way to write it.

A final status is three things that must not drift apart: the transition (with its event,
`router.store`), the status-change metric, and the end of the object's re-query schedule
entry. Each happens only when the transition was applied: a move refused because another
process got there first (a notification, the worker, a create finishing) leaves that
process's metric and schedule entry alone, so a payment it made `pending` is still
re-queried. The batched create (`PaymentService._created`) writes its `pending` or
`succeeded` in one round trip and does the same there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from router.metrics import Metrics
from router.store import Store
from router.store.payments import StoredPayment
from router.store.refunds import StoredRefund

PaymentFinal = Literal["succeeded", "failed", "closed"]
RefundFinal = Literal["succeeded", "failed"]


async def finish_payment(
    store: Store,
    metrics: Metrics,
    stored: StoredPayment,
    status: PaymentFinal,
    fields: Mapping[str, Any],
    *,
    source: str,
    require: str | None = None,
) -> tuple[bool, str]:
    """Move the payment to final `status` if the rules allow (see
    `PaymentStore.transition`); when applied, count it under `source` and end its schedule
    entry. Returns (applied, status now)."""
    applied, now = await store.payments.transition(stored, status, fields, require=require)
    if applied:
        metrics.status_changes.labels(status, source).inc()
        await store.schedule.done(stored.merchant_id, stored.payment.id)
    return applied, now


async def finish_refund(
    store: Store,
    metrics: Metrics,
    stored: StoredRefund,
    status: RefundFinal,
    fields: Mapping[str, Any],
    *,
    source: str,
) -> tuple[bool, str]:
    """`finish_payment` for a pending refund."""
    applied, now = await store.refunds.transition(stored, status, fields)
    if applied:
        metrics.refund_status_changes.labels(status, source).inc()
        await store.schedule.done(stored.merchant_id, stored.refund.id)
    return applied, now
