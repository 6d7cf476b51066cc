"""Reconciliation's SQL: runs, their lines and discrepancies, the record's side of a match.

One run per channel account and statement day (`rcn_<YYYYMMDD>_<account>`). An attempt is
announced in its own short transaction (`begin_attempt`: status `running`, `attempts` + 1);
its lines, discrepancies, postings and final counts are then one transaction
(`replace_attempt` first deletes the previous attempt's rows), so a failed attempt leaves the
previous attempt's lines, discrepancies and counts as they were, with the run marked
`failed` and its `error` (`fail_attempt`).

The engine (`router.recon.engine`) streams the statement and calls these per batch: one
query for the batch's payments, one for its refunds, one bulk insert of its lines. Once the
statement is read, the run's fees and coupons are posted per merchant and currency
(`post_run_totals`), in the run's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, delete, exists, func, insert, or_, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from router.record.connect import RecordUnavailable, reason
from router.record.ledger import Account, Entry
from router.record.postings import Movement, post_once
from router.record.schema import (
    ledger_accounts,
    ledger_entries,
    ledger_postings,
    payments,
    recon_discrepancies,
    recon_lines,
    recon_runs,
    refunds,
)

Row = dict[str, Any]
LINE_COLUMNS = tuple(c.name for c in recon_lines.columns)


def run_id(day: str, account: str) -> str:
    """The run of `account`'s statement of `day` (YYYY-MM-DD)."""
    return f"rcn_{day.replace('-', '')}_{account}"


async def begin_attempt(
    engine: AsyncEngine, rid: str, day: str, account: str, wallet: str, now_ms: int
) -> int:
    """Mark the run `running` (created, or its attempts counted up); the attempt's number.
    `RecordUnavailable` when the database cannot answer."""
    try:
        return await _begin_attempt(engine, rid, day, account, wallet, now_ms)
    except (SQLAlchemyError, OSError) as exc:
        raise RecordUnavailable(reason(exc)) from None


async def _begin_attempt(
    engine: AsyncEngine, rid: str, day: str, account: str, wallet: str, now_ms: int
) -> int:
    async with engine.begin() as conn:
        found = await conn.execute(
            select(recon_runs.c.attempts).where(recon_runs.c.id == rid).with_for_update()
        )
        attempts = found.scalar()
        if attempts is None:
            await conn.execute(
                insert(recon_runs).values(
                    id=rid,
                    day=day,
                    account=account,
                    wallet=wallet,
                    status="running",
                    attempts=1,
                    started_ms=now_ms,
                )
            )
            return 1
        await conn.execute(
            update(recon_runs)
            .where(recon_runs.c.id == rid)
            .values(
                status="running",
                attempts=attempts + 1,
                started_ms=now_ms,
                error=None,
                wallet=wallet,
            )
        )
        return int(attempts) + 1


async def fail_attempt(engine: AsyncEngine, rid: str, error: str, now_ms: int) -> None:
    """The attempt failed: the previous attempt's lines and counts stay, marked `failed`."""
    async with engine.begin() as conn:
        await conn.execute(
            update(recon_runs)
            .where(recon_runs.c.id == rid)
            .values(status="failed", error=error[:2000], finished_ms=now_ms)
        )


async def replace_attempt(conn: AsyncConnection, rid: str) -> None:
    """Delete the previous attempt's lines and discrepancies (in the caller's transaction)."""
    await conn.execute(delete(recon_discrepancies).where(recon_discrepancies.c.run_id == rid))
    await conn.execute(delete(recon_lines).where(recon_lines.c.run_id == rid))


async def finish_attempt(
    conn: AsyncConnection,
    rid: str,
    *,
    lines: int,
    matched: int,
    fixed: int,
    needs_review: int,
    totals: Mapping[str, Any],
    now_ms: int,
) -> None:
    await conn.execute(
        update(recon_runs)
        .where(recon_runs.c.id == rid)
        .values(
            status="done",
            finished_ms=now_ms,
            lines=lines,
            matched=matched,
            fixed=fixed,
            needs_review=needs_review,
            totals=dict(totals),
            error=None,
        )
    )


async def lookup(
    conn: AsyncConnection, payment_ids: Sequence[str], refund_ids: Sequence[str]
) -> tuple[dict[str, Row], dict[str, Row]]:
    """The record's payments and refunds a batch of lines names: one query each. A refund
    row carries its payment's channel account as `channel`."""
    p, r = payments.c, refunds.c
    found_p: dict[str, Row] = {}
    found_r: dict[str, Row] = {}
    if payment_ids:
        rows = await conn.execute(
            select(
                p.id,
                p.merchant_id,
                p.status,
                p.amount,
                p.currency,
                p.channel,
                p.livemode,
                p.channel_trade_no,
                p.paid_ms,
                p.created_ms,
            ).where(p.id.in_(bindparam("ids", expanding=True))),
            {"ids": list(set(payment_ids))},
        )
        found_p = {row.id: dict(row._mapping) for row in rows}
    if refund_ids:
        rows = await conn.execute(
            select(
                r.id,
                r.payment_id,
                r.merchant_id,
                r.status,
                r.amount,
                r.currency,
                r.livemode,
                r.channel_refund_no,
                r.succeeded_ms,
                p.channel,
            )
            .select_from(refunds.join(payments, payments.c.id == r.payment_id))
            .where(r.id.in_(bindparam("ids", expanding=True))),
            {"ids": list(set(refund_ids))},
        )
        found_r = {row.id: dict(row._mapping) for row in rows}
    return found_p, found_r


async def write_lines(conn: AsyncConnection, rows: Sequence[Row]) -> None:
    """Insert a batch of lines: COPY on PostgreSQL (asyncpg), executemany elsewhere."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.copy_records_to_table(
            "recon_lines",
            records=[tuple(row.get(c) for c in LINE_COLUMNS) for row in rows],
            columns=list(LINE_COLUMNS),
        )
        return
    await conn.execute(insert(recon_lines), list(rows))


async def write_discrepancies(conn: AsyncConnection, rows: Sequence[Row]) -> None:
    if rows:
        await conn.execute(insert(recon_discrepancies), list(rows))


FEE_PREFIX, DISCOUNT_PREFIX = "fee_", "dsc_"


def _stem(prefix: str, rid: str) -> str:
    """The start of every id of a run's postings of one kind: `fee_<run id>/`. Account names
    have no `/`, so one run's stem never starts another's."""
    return f"{prefix}{rid}/"


async def _posted(conn: AsyncConnection, rid: str) -> dict[tuple[str, str, str], int]:
    """What the run's earlier attempts posted, per (account kind, merchant, currency)."""
    a, e, p = ledger_accounts, ledger_entries, ledger_postings
    stems = [_stem(FEE_PREFIX, rid), _stem(DISCOUNT_PREFIX, rid)]
    found = await conn.execute(
        select(a.c.kind, a.c.merchant_id, a.c.currency, func.sum(e.c.amount))
        .select_from(e.join(p, p.c.id == e.c.posting_id).join(a, a.c.id == e.c.account_id))
        .where(
            or_(*(p.c.id.startswith(stem, autoescape=True) for stem in stems)),
            a.c.kind.in_(("fees", "discounts")),
        )
        .group_by(a.c.kind, a.c.merchant_id, a.c.currency)
    )
    return {(kind, mch, cur): int(total) for kind, mch, cur, total in found}


async def post_run_totals(
    conn: AsyncConnection,
    rid: str,
    account: str,
    attempt: int,
    sums: Mapping[tuple[str, str], Sequence[int]],
    at_ms: int,
) -> int:
    """Post what the run's reconciled lines prove: per merchant and currency, one
    `channel_fee` posting (what `account` kept) and one `merchant_discount` posting (coupons
    the merchant funded), of the difference between this attempt's sums (`sums`:
    [fee, discount]) and what the run's earlier attempts posted. A re-run of an unchanged day
    posts nothing; one whose lines changed (a line fixed since) posts the change. The lines
    themselves keep the detail (`recon_lines.fee`, `amount` − `settled`). The number of
    postings written.

    The run's row is locked first (PostgreSQL), so two attempts of one run at once post one
    after the other, each seeing what the other committed."""
    await conn.execute(select(recon_runs.c.id).where(recon_runs.c.id == rid).with_for_update())
    before = await _posted(conn, rid)
    merchants = {(m, c) for _, m, c in before} | set(sums)
    movements = []
    for number, (merchant, currency) in enumerate(sorted(merchants), 1):
        fee, discount = sums.get((merchant, currency), (0, 0))
        for kind, prefix, holder, total in (
            ("channel_fee", FEE_PREFIX, "fees", fee),
            ("merchant_discount", DISCOUNT_PREFIX, "discounts", discount),
        ):
            change = total - before.get((holder, merchant, currency), 0)
            if change:
                movements.append(
                    Movement(
                        f"{_stem(prefix, rid)}{attempt}/{number}",
                        kind,
                        (
                            Entry(Account(holder, merchant, currency), change),
                            Entry(Account("channel_clearing", account, currency), -change),
                        ),
                        at_ms=at_ms,
                        memo=f"reconciliation {rid}, attempt {attempt}",
                    )
                )
    return len(await post_once(conn, movements))


async def analyze_lines(conn: AsyncConnection) -> None:
    """Give PostgreSQL's planner the run's lines (written in this very transaction, so
    autovacuum has not seen them): without it the anti-joins below may scan the lines once
    per payment."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("ANALYZE recon_lines"))


async def unmatched_payments(
    conn: AsyncConnection,
    rid: str,
    account: str,
    start_ms: int,
    end_ms: int,
    after: str,
    limit: int,
) -> list[Row]:
    """The account's succeeded payments paid in [start_ms, end_ms) that no payment line of
    the run names, by id after `after` (a page: an anti-join, not a set in memory)."""
    p, ln = payments.c, recon_lines.c
    named = exists().where(and_(ln.run_id == rid, ln.kind == "payment", ln.payment_id == p.id))
    rows = await conn.execute(
        select(
            p.id,
            p.merchant_id,
            p.amount,
            p.currency,
            p.channel_trade_no,
            p.paid_ms,
            p.created_ms,
            p.livemode,
        )
        .where(
            p.channel == account,
            p.status == "succeeded",
            p.paid_ms >= start_ms,
            p.paid_ms < end_ms,
            p.id > after,
            ~named,
        )
        .order_by(p.id)
        .limit(limit)
    )
    return [dict(row._mapping) for row in rows]


async def unmatched_refunds(
    conn: AsyncConnection,
    rid: str,
    account: str,
    start_ms: int,
    end_ms: int,
    after: str,
    limit: int,
) -> list[Row]:
    """As `unmatched_payments`, for succeeded refunds of the account's payments."""
    r, ln = refunds.c, recon_lines.c
    named = exists().where(and_(ln.run_id == rid, ln.kind == "refund", ln.refund_id == r.id))
    rows = await conn.execute(
        select(
            r.id,
            r.payment_id,
            r.merchant_id,
            r.amount,
            r.currency,
            r.channel_refund_no,
            r.succeeded_ms,
            r.livemode,
        )
        .select_from(refunds.join(payments, payments.c.id == r.payment_id))
        .where(
            payments.c.channel == account,
            r.status == "succeeded",
            r.succeeded_ms >= start_ms,
            r.succeeded_ms < end_ms,
            r.id > after,
            ~named,
        )
        .order_by(r.id)
        .limit(limit)
    )
    return [dict(row._mapping) for row in rows]
