"""Reads by id from the record: what the API answers about objects that left Redis after
PAYROUTER_REDIS_RETENTION (`router.record.drain`). Each gives the object as Redis held it
(`router.record.rows`). A database that cannot answer is `RecordUnavailable` (the API
answers 503 `record_unavailable`, retry).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from router.record import Record
from router.record.connect import RecordUnavailable, reason
from router.record.query import PaymentFilter, list_events, list_payments
from router.record.rows import attempt_object, stored_event, stored_payment, stored_refund
from router.record.schema import event_attempts, events, payments, refunds
from router.store.events import StoredEvent
from router.store.payments import StoredPayment
from router.store.refunds import StoredRefund


@asynccontextmanager
async def _reading(record: Record) -> AsyncIterator[AsyncConnection]:
    try:
        async with record.engine.connect() as conn:
            yield conn
    except (SQLAlchemyError, OSError) as exc:
        raise RecordUnavailable(reason(exc)) from exc


async def payment(record: Record, pay_id: str) -> StoredPayment | None:
    """The payment the record holds, whoever's it is."""
    row = await payment_row(record, pay_id)
    return None if row is None else stored_payment(row)


async def payment_row(record: Record, pay_id: str) -> dict[str, Any] | None:
    """The payment's row, with its `version`."""
    async with _reading(record) as conn:
        row = (await conn.execute(select(payments).where(payments.c.id == pay_id))).first()
    return None if row is None else dict(row._mapping)


async def refund(record: Record, re_id: str) -> StoredRefund | None:
    """The refund the record holds, whoever's it is."""
    async with _reading(record) as conn:
        row = (await conn.execute(select(refunds).where(refunds.c.id == re_id))).first()
    return None if row is None else stored_refund(dict(row._mapping))


async def refunds_of(record: Record, pay_id: str) -> list[StoredRefund]:
    """A payment's refunds, newest first (as its Redis index orders them)."""
    async with _reading(record) as conn:
        found = await conn.execute(
            select(refunds)
            .where(refunds.c.payment_id == pay_id)
            .order_by(refunds.c.created_ms.desc(), refunds.c.id.desc())
        )
        return [stored_refund(dict(row._mapping)) for row in found]


async def event(
    record: Record, evt_id: str
) -> tuple[StoredEvent, list[dict[str, Any]], int] | None:
    """The event the record holds, its delivery attempts (as Redis kept them) and version."""
    async with _reading(record) as conn:
        row = (await conn.execute(select(events).where(events.c.id == evt_id))).first()
        if row is None:
            return None
        tried = await conn.execute(
            select(event_attempts)
            .where(event_attempts.c.event_id == evt_id)
            .order_by(event_attempts.c.number)
        )
        attempts = [attempt_object(dict(a._mapping)) for a in tried]
        return stored_event(dict(row._mapping)), attempts, int(row.version)


async def order_holder(record: Record, mch: str, merchant_order_id: str) -> str | None:
    """A payment of the record that holds the merchant_order_id: any but a failed one."""
    async with _reading(record) as conn:
        return (
            await conn.execute(
                select(payments.c.id)
                .where(
                    payments.c.merchant_id == mch,
                    payments.c.merchant_order_id == merchant_order_id,
                    payments.c.status != "failed",
                )
                .order_by(payments.c.created_ms)
                .limit(1)
            )
        ).scalar()


async def reserved(record: Record, pay_id: str) -> int:
    """What the payment's pending and succeeded refunds add up to (its `amount_reserved`)."""
    async with _reading(record) as conn:
        total = (
            await conn.execute(
                select(func.coalesce(func.sum(refunds.c.amount), 0)).where(
                    refunds.c.payment_id == pay_id, refunds.c.status != "failed"
                )
            )
        ).scalar()
    return int(total or 0)


async def payments_page(
    record: Record,
    mch: str,
    filters: PaymentFilter,
    *,
    limit: int,
    after: StoredPayment | None,
) -> tuple[list[StoredPayment], bool]:
    """A page of the merchant's recorded payments (`router.record.query.list_payments`),
    older than `after` when given: (page, has_more)."""
    position = None if after is None else (after.created_ms, after.payment.id)
    async with _reading(record) as conn:
        page = await list_payments(conn, mch, filters, limit=limit, after=position)
    return [stored_payment(row) for row in page.rows], page.has_more


async def events_page(
    record: Record,
    mch: str,
    *,
    type_: str | None,
    limit: int,
    after: StoredEvent | None,
) -> tuple[list[StoredEvent], bool]:
    """A page of the merchant's recorded events (`router.record.query.list_events`), older
    than `after` when given: (page, has_more)."""
    position = None if after is None else (after.created_ms, after.id)
    async with _reading(record) as conn:
        page = await list_events(conn, mch, type_=type_, limit=limit, after=position)
    return [stored_event(row) for row in page.rows], page.has_more
