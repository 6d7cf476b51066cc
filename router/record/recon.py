"""Reconciliation's SQL: runs, their lines and discrepancies, the record's side of a match.

One run per channel account and statement day (`rcn_<YYYYMMDD>_<account>`). An attempt is
announced in its own short transaction (`begin_attempt`: status `running`, `attempts` + 1);
its lines, discrepancies, postings and final counts are then one transaction
(`replace_attempt` first deletes the previous attempt's rows), so a failed attempt leaves the
previous attempt's lines, discrepancies and counts as they were, with the run marked
`failed` and its `error` (`fail_attempt`).

The engine (`router.recon.engine`) streams the statement and calls these per batch: one
query for the batch's payments, one for its refunds, one bulk insert of its lines, then the
batch's fee and coupon postings (`post`: on PostgreSQL in short transactions of their own).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, delete, exists, insert, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from router.record.connect import RecordUnavailable, reason
from router.record.ledger import Account, Entry, ensure_accounts
from router.record.postings import Movement, discount_posting_id, fee_posting_id, post_once
from router.record.schema import payments, recon_discrepancies, recon_lines, recon_runs, refunds

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


def fee_and_discount(
    object_id: str, account: str, merchant: str, currency: str, fee: int, discount: int, at_ms: int
) -> list[Movement]:
    """The `channel_fee` and `merchant_discount` postings a reconciled line proves (each
    once-only by id: `fee_<id>`, `dsc_<id>`); a zero amount posts nothing."""
    is_refund = object_id.startswith("re_")
    out = []
    for kind, posting_id, merchant_account, amount in (
        ("channel_fee", fee_posting_id(object_id), "fees", fee),
        ("merchant_discount", discount_posting_id(object_id), "discounts", discount),
    ):
        if amount:
            out.append(
                Movement(
                    posting_id,
                    kind,
                    (
                        Entry(Account(merchant_account, merchant, currency), amount),
                        Entry(Account("channel_clearing", account, currency), -amount),
                    ),
                    at_ms=at_ms,
                    payment_id=None if is_refund else object_id,
                    refund_id=object_id if is_refund else None,
                )
            )
    return out


POST_CHUNK = 500
"""Postings per transaction on PostgreSQL: each takes two advisory locks per posting, held
to its commit, and the server's lock table is shared and small (64 per connection)."""
POSTERS = 2
"""Connections posting at once beside the run's (PostgreSQL)."""


class Poster:
    """Posts a run's fees and coupons.

    On PostgreSQL in chunks, each its own short transaction on one of `POSTERS` connections
    beside the run's, while the run reads and matches the next lines: a run's postings in its
    own transaction would hold a lock per posting until it commits (a million lines cannot),
    and a posting is a fact the statement line proves whatever becomes of the run (once-only
    by id, so a re-run finds it and posts nothing). New ledger accounts are created first, in
    one order, so two posters never wait on each other's. SQLite has one writer: there the
    postings go into the run's transaction."""

    def __init__(self, conn: AsyncConnection, engine: AsyncEngine) -> None:
        self.conn = conn
        self.engine = engine
        self.written = 0
        self.error: BaseException | None = None
        self._accounts: set[str] = set()
        self._queue: asyncio.Queue[Sequence[Movement] | None] = asyncio.Queue(maxsize=POSTERS)
        self._tasks: list[asyncio.Task[None]] = []
        if conn.dialect.name == "postgresql":
            self._tasks = [asyncio.create_task(self._work()) for _ in range(POSTERS)]

    async def put(self, movements: Sequence[Movement]) -> None:
        """Post `movements` (at once on SQLite; queued on PostgreSQL)."""
        if not movements:
            return
        if not self._tasks:
            done = await post_once(self.conn, movements)
            self.written += len(done)
            return
        if self.error is not None:
            raise self.error
        new = {e.account.id: e.account for m in movements for e in m.entries}
        fresh = [new[k] for k in sorted(new.keys() - self._accounts)]
        if fresh:
            async with self.engine.begin() as own:
                await ensure_accounts(own, fresh)
            self._accounts.update(a.id for a in fresh)
        for first in range(0, len(movements), POST_CHUNK):
            await self._queue.put(movements[first : first + POST_CHUNK])

    async def _work(self) -> None:
        while (chunk := await self._queue.get()) is not None:
            if self.error is None:
                try:
                    async with self.engine.begin() as own:
                        done = await post_once(own, chunk)
                    # Counted after the await: `written += await ...` would read it before,
                    # and the other poster's count in between would be lost.
                    self.written += len(done)
                except Exception as exc:
                    # Keep taking chunks (unposted) so `put` never waits on a dead poster.
                    self.error = exc

    async def close(self) -> int:
        """Wait for every queued posting; the number written. Raises a poster's error."""
        for _ in self._tasks:
            await self._queue.put(None)
        await asyncio.gather(*self._tasks)
        self._tasks = []
        if self.error is not None:
            raise self.error
        return self.written

    async def abort(self) -> None:
        """Stop posting (the run failed): the chunk each poster is writing is rolled back."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []


async def analyze_lines(conn: AsyncConnection) -> None:
    """Give PostgreSQL's planner the run's lines (written in this very transaction, so
    autovacuum has not seen them): without it the anti-joins below may scan the lines once
    per payment."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("ANALYZE recon_lines"))


async def analyze_ledger(engine: AsyncEngine) -> None:
    """Refresh the planner's view of the ledger on PostgreSQL. A plan cached while the ledger
    was small (a prepared statement's, a ledger trigger's) scans the whole table; a run that
    grows the ledger by a posting a line would turn quadratic. ANALYZE invalidates those
    plans; the engine calls this each time its postings double."""
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            await conn.execute(text("ANALYZE ledger_postings, ledger_entries"))
            await conn.commit()


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
