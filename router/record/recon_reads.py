"""Reads of reconciliation runs for operators (`GET /admin/recon/runs...`) and for the
metrics every router exports (`last_done`)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from router.record.connect import RecordUnavailable, reason
from router.record.schema import recon_discrepancies, recon_lines, recon_runs

Row = dict[str, object]

RUN_COLUMNS = (
    "id",
    "day",
    "account",
    "wallet",
    "status",
    "attempts",
    "started_ms",
    "finished_ms",
    "lines",
    "matched",
    "fixed",
    "needs_review",
    "totals",
    "error",
)


@dataclass(frozen=True)
class RunPage:
    runs: list[Row]
    has_more: bool


async def list_runs(
    engine: AsyncEngine,
    *,
    day: str | None,
    account: str | None,
    status: str | None,
    limit: int,
    starting_after: str | None,
) -> RunPage:
    """Runs newest first by (started_ms, id); `LookupError` for an unknown cursor;
    `RecordUnavailable` when the database cannot answer."""
    c = recon_runs.c
    try:
        async with engine.connect() as conn:
            query = select(*(c[name] for name in RUN_COLUMNS))
            for column, value in ((c.day, day), (c.account, account), (c.status, status)):
                if value is not None:
                    query = query.where(column == value)
            if starting_after is not None:
                cursor = (
                    await conn.execute(select(c.started_ms).where(c.id == starting_after))
                ).scalar()
                if cursor is None:
                    raise LookupError(starting_after)
                query = query.where(
                    (c.started_ms < cursor) | ((c.started_ms == cursor) & (c.id < starting_after))
                )
            rows = await conn.execute(
                query.order_by(c.started_ms.desc(), c.id.desc()).limit(limit + 1)
            )
            found = [dict(row._mapping) for row in rows]
    except (SQLAlchemyError, OSError) as exc:
        raise RecordUnavailable(reason(exc)) from None
    return RunPage(found[:limit], len(found) > limit)


async def read_run(
    engine: AsyncEngine, rid: str, *, lines: str | None = None, limit: int = 1000
) -> Row | None:
    """The run with its discrepancies (and, when `lines` names a result or is `all`, up to
    `limit` of its lines); None when there is no such run."""
    c = recon_runs.c
    try:
        async with engine.connect() as conn:
            found = (
                await conn.execute(select(*(c[name] for name in RUN_COLUMNS)).where(c.id == rid))
            ).first()
            if found is None:
                return None
            run = dict(found._mapping)
            d = recon_discrepancies.c
            rows = await conn.execute(
                select(recon_discrepancies).where(d.run_id == rid).order_by(d.number)
            )
            run["discrepancies"] = [dict(row._mapping) for row in rows]
            if lines is not None:
                ln = recon_lines.c
                query = select(recon_lines).where(ln.run_id == rid)
                if lines != "all":
                    query = query.where(ln.result == lines)
                rows = await conn.execute(query.order_by(ln.seq).limit(limit))
                run["statement_lines"] = [dict(row._mapping) for row in rows]
    except (SQLAlchemyError, OSError) as exc:
        raise RecordUnavailable(reason(exc)) from None
    return run


@dataclass(frozen=True)
class LastRun:
    """An account's latest finished (`done`) run, for the metrics every router exports."""

    account: str
    finished_ms: int
    needs_review: dict[str, int]
    """Discrepancies needing review by kind."""


async def last_done(engine: AsyncEngine) -> list[LastRun]:
    """Each account's most recently finished `done` run and its discrepancies needing review
    by kind; `RecordUnavailable` when the database cannot answer."""
    c, d = recon_runs.c, recon_discrepancies.c
    newest = (
        select(c.account, func.max(c.finished_ms).label("finished_ms"))
        .where(c.status == "done")
        .group_by(c.account)
        .subquery()
    )
    try:
        async with engine.connect() as conn:
            runs = (
                await conn.execute(
                    select(c.id, c.account, c.finished_ms).join(
                        newest,
                        and_(c.account == newest.c.account, c.finished_ms == newest.c.finished_ms),
                    )
                )
            ).all()
            counts: dict[str, dict[str, int]] = {run.id: {} for run in runs}
            if counts:
                rows = await conn.execute(
                    select(d.run_id, d.kind, func.count())
                    .where(d.run_id.in_(list(counts)), d.resolution == "needs_review")
                    .group_by(d.run_id, d.kind)
                )
                for run_id, kind, count in rows:
                    counts[run_id][kind] = int(count)
    except (SQLAlchemyError, OSError) as exc:
        raise RecordUnavailable(reason(exc)) from None
    return [LastRun(run.account, int(run.finished_ms), counts[run.id]) for run in runs]
