"""Settlements in the record (docs/reconciliation.md "Settlement"): what a day's settlement
reads (the day's reconciliation runs and their settled lines) and writes (the settlement,
its lines and its `settlement` posting in one transaction), and what merchants list.

`router.settle` decides; this module only reads and writes rows. Rows come back as dicts
keyed by the tables' column names.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import and_, bindparam, case, func, insert, literal, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from router.record import Record
from router.record.connect import RecordUnavailable, reason
from router.record.postings import post_settlement
from router.record.query import Page, _page
from router.record.schema import (
    events,
    payments,
    recon_lines,
    recon_runs,
    settlement_lines,
    settlements,
)

SETTLED_RESULTS = ("matched", "fixed")
"""Reconciled lines that count: they agreed with the record, or the record was corrected."""
CSV_CHUNK = 500
"""Settlement lines read per query while a CSV streams."""


async def day_runs(conn: AsyncConnection, day: str) -> list[dict[str, Any]]:
    """The reconciliation runs of `day` (one per channel account), by account."""
    statement = (
        select(
            recon_runs.c.id,
            recon_runs.c.account,
            recon_runs.c.status,
            recon_runs.c.needs_review,
        )
        .where(recon_runs.c.day == day)
        .order_by(recon_runs.c.account)
    )
    return [dict(row) for row in (await conn.execute(statement)).mappings()]


def _settled(day: str) -> list[Any]:
    """Which lines settle on `day`: matched or fixed lines of the day's finished runs that
    name a merchant and a payment."""
    return [
        recon_runs.c.day == day,
        recon_runs.c.status == "done",
        recon_lines.c.result.in_(SETTLED_RESULTS),
        recon_lines.c.merchant_id.is_not(None),
        recon_lines.c.payment_id.is_not(None),
    ]


def _signed(payment: Any, refund: Any) -> Any:
    return case((recon_lines.c.kind == "payment", payment), else_=refund)


_COUPON = recon_lines.c.amount - recon_lines.c.settled
_LINE_DISCOUNT = _signed(_COUPON, -_COUPON)
"""A line's share of the coupons: a payment's, less what a refund hands back."""
_LINE_NET = _signed(recon_lines.c.settled, -recon_lines.c.settled) - recon_lines.c.fee
"""What a line moves to the merchant: amount − discount − fee, signed."""


async def day_totals(conn: AsyncConnection, day: str) -> list[dict[str, Any]]:
    """Per merchant, currency and mode, the figures of `day`'s settled lines, summed by the
    database (nothing per line comes back): gross, refunds, discounts, fees, counts."""
    c = recon_lines.c
    zero = literal(0)
    statement = (
        select(
            c.merchant_id,
            c.currency,
            c.livemode,
            func.sum(_signed(c.amount, zero)).label("gross"),
            func.sum(_signed(zero, c.amount)).label("refunds"),
            func.sum(_LINE_DISCOUNT).label("discounts"),
            func.sum(c.fee).label("fees"),
            func.sum(_signed(literal(1), zero)).label("payment_count"),
            func.sum(_signed(zero, literal(1))).label("refund_count"),
        )
        .join(recon_runs, recon_runs.c.id == c.run_id)
        .where(*_settled(day))
        .group_by(c.merchant_id, c.currency, c.livemode)
        .order_by(c.merchant_id, c.currency, c.livemode)
    )
    return [
        {k: (v if k in ("merchant_id", "currency", "livemode") else int(v)) for k, v in row.items()}
        for row in (await conn.execute(statement)).mappings()
    ]


async def _copy_lines(conn: AsyncConnection, settlement: Mapping[str, Any]) -> None:
    """Copy the settlement's lines from `recon_lines` in one INSERT ... SELECT, numbered in
    statement order (account, then line): nothing passes through this process."""
    c = recon_lines.c
    lines = (
        select(
            literal(settlement["id"]),
            func.row_number().over(order_by=(recon_runs.c.account, c.seq)),
            c.kind,
            c.payment_id,
            c.refund_id,
            # Outer: a reconciled line is money the channel moved, settled even if its
            # payment were missing from the record (its merchant_order_id is then empty).
            func.coalesce(payments.c.merchant_order_id, ""),
            recon_runs.c.account,
            c.channel_trade_no,
            c.amount,
            _LINE_DISCOUNT,
            c.fee,
            _LINE_NET,
            c.booked_ms,
        )
        .join(recon_runs, recon_runs.c.id == c.run_id)
        .outerjoin(payments, payments.c.id == c.payment_id)
        .where(
            *_settled(settlement["day"]),
            c.merchant_id == settlement["merchant_id"],
            c.currency == settlement["currency"],
            c.livemode == settlement["livemode"],
        )
    )
    columns = [
        "settlement_id",
        "number",
        "kind",
        "payment_id",
        "refund_id",
        "merchant_order_id",
        "account",
        "channel_trade_no",
        "amount",
        "discount",
        "fee",
        "net",
        "booked_ms",
    ]
    await conn.execute(insert(settlement_lines).from_select(columns, lines))


async def find(
    conn: AsyncConnection, merchant_id: str, day: str, currency: str, livemode: bool
) -> dict[str, Any] | None:
    """The settlement of that merchant, day, currency and mode, if made already."""
    c = settlements.c
    row = (
        (
            await conn.execute(
                select(settlements).where(
                    c.merchant_id == merchant_id,
                    c.day == day,
                    c.currency == currency,
                    c.livemode == livemode,
                )
            )
        )
        .mappings()
        .first()
    )
    return None if row is None else dict(row)


async def of_day(conn: AsyncConnection, day: str) -> list[dict[str, Any]]:
    """Every settlement of `day`."""
    statement = select(settlements).where(settlements.c.day == day).order_by(settlements.c.id)
    return [dict(row) for row in (await conn.execute(statement)).mappings()]


async def write(conn: AsyncConnection, settlement: Mapping[str, Any]) -> bool:
    """Insert `settlement` (a `settlements` row), a copy of its lines and its ledger
    posting, in the caller's transaction. False, with nothing written, when another writer
    made the same merchant's day first (the unique constraint refused it)."""
    try:
        async with conn.begin_nested():
            await conn.execute(insert(settlements), [dict(settlement)])
    except IntegrityError:
        return False
    await _copy_lines(conn, settlement)
    await post_settlement(
        conn,
        settlement["id"],
        settlement["merchant_id"],
        settlement["currency"],
        gross=settlement["gross"],
        refunded=settlement["refunds"],
        fees=settlement["fees"],
        discounts=settlement["discounts"],
        at_ms=settlement["created_ms"],
        memo=f"{settlement['day']} {'live' if settlement['livemode'] else 'test'}",
    )
    return True


async def page(
    conn: AsyncConnection,
    merchant_id: str,
    livemode: bool,
    *,
    day: str | None = None,
    currency: str | None = None,
    limit: int = 10,
    starting_after: str | None = None,
) -> Page:
    """A merchant's settlements in one mode, newest first (`query`'s cursor convention)."""
    c = settlements.c
    owner = and_(c.merchant_id == merchant_id, c.livemode == livemode)
    conditions = []
    if day is not None:
        conditions.append(c.day == day)
    if currency is not None:
        conditions.append(c.currency == currency)
    return await _page(conn, settlements, owner, "settlement", conditions, limit, starting_after)


async def get(conn: AsyncConnection, settlement_id: str) -> dict[str, Any] | None:
    """The settlement with that id, whoever's it is."""
    row = (
        (await conn.execute(select(settlements).where(settlements.c.id == settlement_id)))
        .mappings()
        .first()
    )
    return None if row is None else dict(row)


async def lines_page(
    conn: AsyncConnection, settlement_id: str, *, limit: int, after: int = 0
) -> list[dict[str, Any]]:
    """Up to `limit` lines of a settlement numbered above `after`, in order."""
    c = settlement_lines.c
    statement = (
        select(settlement_lines)
        .where(c.settlement_id == settlement_id, c.number > after)
        .order_by(c.number)
        .limit(limit)
    )
    return [dict(row) for row in (await conn.execute(statement)).mappings()]


async def all_lines(
    conn: AsyncConnection, settlement_id: str, chunk: int = CSV_CHUNK
) -> AsyncIterator[list[dict[str, Any]]]:
    """Every line of a settlement, `chunk` at a time: a big merchant's day is never held
    in memory at once."""
    after = 0
    while True:
        rows = await lines_page(conn, settlement_id, limit=chunk, after=after)
        if not rows:
            return
        yield rows
        after = rows[-1]["number"]


@asynccontextmanager
async def reading(record: Record) -> AsyncIterator[AsyncConnection]:
    """A connection to read settlements with; a database that cannot answer is
    `RecordUnavailable` (the API answers 503)."""
    try:
        async with record.engine.connect() as conn:
            yield conn
    except (SQLAlchemyError, OSError) as exc:
        raise RecordUnavailable(reason(exc)) from exc


async def recorded_events(conn: AsyncConnection, event_ids: Sequence[str]) -> set[str]:
    """Which of `event_ids` the record holds (the drainer copied them from Redis)."""
    if not event_ids:
        return set()
    found = await conn.execute(
        select(events.c.id).where(events.c.id.in_(bindparam("ids", expanding=True))),
        {"ids": list(event_ids)},
    )
    return {evt_id for (evt_id,) in found}
