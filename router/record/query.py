"""Lists from the record: a merchant's payments with any filter, refunds (of a payment or of
a merchant) and events, newest first with a stable cursor, and no limit on how far back.

Order and cursor are `(created_ms, id)` descending: two objects created in the same
millisecond are ordered by id, so a page boundary between them neither repeats nor skips
one. `starting_after` is an object's id, resolved to its `(created_ms, id)` from the table
(an id that is not the merchant's raises `CursorNotFound`). A page reads `limit + 1` rows
to tell `has_more` without counting.

Every filter is a condition on one indexed column after the merchant (schema.py's indexes
for payments, and 0002's for status with amount or channel), so PostgreSQL reads the rows of
a page from an index in the order of the list instead of sorting the merchant's payments.
Rows come back as dicts keyed by the table's column names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, and_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from router.record.schema import events, payments, refunds

MAX_LIMIT = 100
"""The largest page; the API's own limit is checked before this."""


class CursorNotFound(LookupError):
    """`starting_after` names no object of this merchant (or of this payment)."""

    def __init__(self, noun: str, ident: str) -> None:
        super().__init__(f"starting_after: no such {noun} {ident!r}")
        self.ident = ident


@dataclass(frozen=True)
class PaymentFilter:
    """What `GET /v1/payments` can ask for; None is no condition. Times in ms since the
    epoch: created at or after `created_gte_ms`, before `created_lt_ms`; amounts in minor
    units, both bounds included."""

    status: str | None = None
    method: str | None = None
    wallet: str | None = None
    channel: str | None = None
    merchant_order_id: str | None = None
    created_gte_ms: int | None = None
    created_lt_ms: int | None = None
    amount_gte: int | None = None
    amount_lte: int | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        c = payments.c
        out: list[ColumnElement[bool]] = []
        for column, value in (
            (c.status, self.status),
            (c.method, self.method),
            (c.wallet, self.wallet),
            (c.channel, self.channel),
            (c.merchant_order_id, self.merchant_order_id),
        ):
            if value is not None:
                out.append(column == value)
        if self.created_gte_ms is not None:
            out.append(c.created_ms >= self.created_gte_ms)
        if self.created_lt_ms is not None:
            out.append(c.created_ms < self.created_lt_ms)
        if self.amount_gte is not None:
            out.append(c.amount >= self.amount_gte)
        if self.amount_lte is not None:
            out.append(c.amount <= self.amount_lte)
        return out


@dataclass(frozen=True)
class Page:
    """One page of a list: its rows (dicts by column name), newest first, and whether older
    ones follow."""

    rows: list[dict[str, Any]]
    has_more: bool

    @property
    def last_id(self) -> str | None:
        """What to pass as `starting_after` for the next page."""
        return str(self.rows[-1]["id"]) if self.rows else None


async def _cursor(
    conn: AsyncConnection,
    table: Table,
    owner: ColumnElement[bool],
    noun: str,
    starting_after: str,
) -> ColumnElement[bool]:
    found = (
        await conn.execute(
            select(table.c.created_ms, table.c.id).where(owner, table.c.id == starting_after)
        )
    ).first()
    if found is None:
        raise CursorNotFound(noun, starting_after)
    return tuple_(table.c.created_ms, table.c.id) < tuple_(found[0], found[1])


async def _page(
    conn: AsyncConnection,
    table: Table,
    owner: ColumnElement[bool],
    noun: str,
    conditions: list[ColumnElement[bool]],
    limit: int,
    starting_after: str | None,
) -> Page:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be 1 to {MAX_LIMIT}, not {limit}")
    where = [owner, *conditions]
    if starting_after is not None:
        where.append(await _cursor(conn, table, owner, noun, starting_after))
    statement: Select[Any] = (
        select(table)
        .where(*where)
        .order_by(table.c.created_ms.desc(), table.c.id.desc())
        .limit(limit + 1)
    )
    rows = [dict(row) for row in (await conn.execute(statement)).mappings()]
    return Page(rows[:limit], len(rows) > limit)


def payments_statement(merchant_id: str, filters: PaymentFilter, limit: int) -> Select[Any]:
    """The first page's query, for EXPLAIN (the benchmark and the index test)."""
    return (
        select(payments)
        .where(payments.c.merchant_id == merchant_id, *filters.conditions())
        .order_by(payments.c.created_ms.desc(), payments.c.id.desc())
        .limit(limit + 1)
    )


async def list_payments(
    conn: AsyncConnection,
    merchant_id: str,
    filters: PaymentFilter = PaymentFilter(),
    *,
    limit: int = 10,
    starting_after: str | None = None,
    after: tuple[int, str] | None = None,
) -> Page:
    """A merchant's payments matching `filters`, newest first, after `starting_after` (a
    recorded payment's id), or after the position `after` (`(created_ms, id)`: a cursor the
    caller found elsewhere, such as a payment not drained yet)."""
    owner = payments.c.merchant_id == merchant_id
    conditions = filters.conditions()
    if after is not None:
        conditions.append(tuple_(payments.c.created_ms, payments.c.id) < tuple_(*after))
    return await _page(conn, payments, owner, "payment", conditions, limit, starting_after)


async def list_refunds(
    conn: AsyncConnection,
    merchant_id: str,
    *,
    payment_id: str | None = None,
    limit: int = 10,
    starting_after: str | None = None,
) -> Page:
    """A merchant's refunds, or one payment's when `payment_id` is given, newest first."""
    owner = refunds.c.merchant_id == merchant_id
    if payment_id is not None:
        owner = and_(owner, refunds.c.payment_id == payment_id)
    return await _page(conn, refunds, owner, "refund", [], limit, starting_after)


async def list_events(
    conn: AsyncConnection,
    merchant_id: str,
    *,
    type_: str | None = None,
    limit: int = 10,
    starting_after: str | None = None,
    after: tuple[int, str] | None = None,
) -> Page:
    """A merchant's events, of one type when `type_` is given, newest first, after
    `starting_after` (a recorded event's id) or the position `after` (`(created_ms, id)`)."""
    owner = events.c.merchant_id == merchant_id
    conditions = [] if type_ is None else [events.c.type == type_]
    if after is not None:
        conditions.append(tuple_(events.c.created_ms, events.c.id) < tuple_(*after))
    return await _page(conn, events, owner, "event", conditions, limit, starting_after)
