"""Payments and refunds that left Redis: read from the record, and put back for a refund.

A final payment, refund or event leaves Redis `PAYROUTER_REDIS_RETENTION` after the record
has it (`router.record.drain`). Reads by id fall back to the record here; a refund of such a
payment first puts the payment back (`restore`), then takes the normal path; a create whose
merchant_order_id is no longer in Redis asks the record who holds it (`order_holder`).
"""

from __future__ import annotations

import asyncio
import logging

from router.domain_errors import InvalidField
from router.ids import PAYMENT_ID
from router.record import reads
from router.record.connect import RecordUnavailable
from router.record.query import PaymentFilter
from router.record.rows import stored_payment
from router.runtime import Runtime
from router.store.changes import Retiring
from router.store.codec import encode
from router.store.payments import StoredPayment
from router.store.refunds import StoredRefund

log = logging.getLogger("payrouter.record")
ORDER_CHECK_S = 0.5
"""The longest a create waits for the record's answer about its merchant_order_id."""
ORDER_CHECK_PAUSE_S = 5.0
"""After the record failed to answer, creates skip the check this long (each counted)."""


async def payment(rt: Runtime, mch: str, pay_id: str) -> StoredPayment | None:
    """The merchant's payment from the record; None if it has none."""
    if rt.record is None:
        return None
    found = await reads.payment(rt.record, pay_id)
    return found if found is not None and found.merchant_id == mch else None


async def refund(rt: Runtime, mch: str, re_id: str) -> StoredRefund | None:
    """The merchant's refund from the record; None if it has none."""
    if rt.record is None:
        return None
    found = await reads.refund(rt.record, re_id)
    return found if found is not None and found.merchant_id == mch else None


async def refunds(
    rt: Runtime, mch: str, pay_id: str, live: list[StoredRefund]
) -> list[StoredRefund]:
    """The payment's refunds, newest first: those Redis holds (`live`, which win) and those
    only the record holds."""
    if rt.record is None:
        return live
    merged = {r.refund.id: r for r in await reads.refunds_of(rt.record, pay_id)}
    merged |= {r.refund.id: r for r in live}
    found = [r for r in merged.values() if r.merchant_id == mch]
    return sorted(found, key=lambda r: (r.created_ms, r.refund.id), reverse=True)


FRESH_MS = 30_000
"""Payments created this recently are also read from Redis for a list's first page: the
drainer may not have copied them yet (its lag is well under a second at a steady rate)."""


async def payments(
    rt: Runtime, mch: str, filters: PaymentFilter, *, limit: int, starting_after: str | None
) -> tuple[list[StoredPayment], bool]:
    """A page of the merchant's payments, newest first, from the record: every payment ever
    made, any filter, no scan limit. The last `FRESH_MS` of creates are also read from Redis
    (they win: as new or newer), so a payment is listed, and paged after, as soon as it is
    acknowledged; a change to an older payment shows once drained. (page, has_more)"""
    cursor = None
    if starting_after is not None:
        if PAYMENT_ID.fullmatch(starting_after):
            cursor = await rt.store.payments.get(mch, starting_after)
            if cursor is None:
                cursor = await payment(rt, mch, starting_after)
        if cursor is None:
            raise InvalidField(
                "resource_missing",
                f"starting_after: no such payment {starting_after!r}",
                param="starting_after",
            )
    page, has_more = await reads.payments_page(rt.record, mch, filters, limit=limit, after=cursor)
    since = rt.clock.now_ms() - FRESH_MS
    if cursor is not None and cursor.created_ms < since:
        return page, has_more
    recent, more_recent = await rt.store.payments.page(
        mch,
        limit=limit,
        merchant_order_id=filters.merchant_order_id,
        status=filters.status,
        created_gte_ms=max(since, filters.created_gte_ms or since),
        created_lt_ms=filters.created_lt_ms,
        starting_after=cursor,
    )
    merged = {s.payment.id: s for s in page}
    merged |= {s.payment.id: s for s in recent if _matches(s, filters)}
    ordered = sorted(merged.values(), key=lambda s: (s.created_ms, s.payment.id), reverse=True)
    return ordered[:limit], has_more or more_recent or len(ordered) > limit


def _matches(stored: StoredPayment, filters: PaymentFilter) -> bool:
    """The filters Redis's listing does not apply itself."""
    p = stored.payment
    return (
        (filters.method is None or p.method == filters.method)
        and (filters.wallet is None or p.wallet == filters.wallet)
        and (filters.channel is None or p.channel == filters.channel)
        and (filters.amount_gte is None or p.amount >= filters.amount_gte)
        and (filters.amount_lte is None or p.amount <= filters.amount_lte)
    )


async def order_holder(rt: Runtime, mch: str, merchant_order_id: str) -> str | None:
    """The payment of the record holding the merchant_order_id (none failed), for a create
    whose order may have left Redis. A record that cannot answer quickly is skipped (and
    skipped for `ORDER_CHECK_PAUSE_S`), each create counted in
    `payrouter_record_unchecked_orders_total`: the create goes on without the check."""
    if rt.record is None:
        return None
    if rt.clock.monotonic() < rt.order_checks_paused_until:
        rt.metrics.record_unchecked_orders.inc()
        return None
    try:
        async with asyncio.timeout(ORDER_CHECK_S):
            return await reads.order_holder(rt.record, mch, merchant_order_id)
    except (RecordUnavailable, TimeoutError) as exc:
        rt.order_checks_paused_until = rt.clock.monotonic() + ORDER_CHECK_PAUSE_S
        rt.metrics.record_unchecked_orders.inc()
        log.warning("record: merchant_order_id not checked (the database did not answer): %r", exc)
        return None


async def restore(rt: Runtime, pay_id: str) -> bool:
    """Put a payment that left Redis back from the record, at its recorded version, with what
    its refunds reserve and its refunds' index, unless Redis has it again. It is scheduled to
    leave again after the retention, should nothing change it. Returns True if written."""
    if rt.record is None:
        return False
    row = await reads.payment_row(rt.record, pay_id)
    if row is None:
        return False
    stored = stored_payment(row)
    earlier = await reads.refunds_of(rt.record, pay_id)
    reserved = sum(r.refund.amount for r in earlier if r.refund.status != "failed")
    fields = stored.payment.model_dump(mode="json") | {
        "merchant_id": stored.merchant_id,
        "created_ms": stored.created_ms,
        "client_ip": None,
        "payer_id": None,
        "amount_reserved": reserved,
        "v": row["version"],
    }
    changes = rt.store.changes
    written = await changes.restore_payment(
        pay_id,
        stored.merchant_id,
        stored.created_ms,
        encode(fields),
        [(r.refund.id, r.created_ms) for r in earlier],
    )
    if written:
        due_ms = rt.clock.now_ms() + int(rt.settings.redis_retention_s * 1000)
        p = stored.payment
        await changes.schedule_retire(
            [
                Retiring(
                    "pay", pay_id, row["version"], stored.merchant_id, p.merchant_order_id, due_ms
                )
            ]
        )
    return written
