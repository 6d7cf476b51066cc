"""The drainer's writes (`router.record.drain`): upserts that never lower a version, inserts
of what is new, in the caller's transaction, on PostgreSQL and SQLite alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, and_, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from router.record.schema import api_keys, channel_notifications


def _insert(conn: AsyncConnection, table: Table) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


async def upsert(conn: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows or update them to a higher version, never to a lower or equal one.

    One statement for every row (executemany: SQLAlchemy sends the rows in multi-row batches
    where the driver allows, and compiles the statement once, not once per batch), in id
    order so that two drainers writing the same rows take their locks in the same order."""
    ordered = sorted(rows, key=lambda row: str(row["id"]))
    if ordered:
        stmt = _insert(conn, table)
        changed = {c.name: stmt.excluded[c.name] for c in table.columns if c.name != "id"}
        if "version" in table.c:
            guard = table.c.version < stmt.excluded.version
        else:
            # Merchants carry no version: the later profile wins.
            guard = table.c.updated_ms <= stmt.excluded.updated_ms
        await conn.execute(
            stmt.on_conflict_do_update(index_elements=["id"], set_=changed, where=guard), ordered
        )


async def insert_new(conn: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows whose key is not there yet."""
    if rows:
        await conn.execute(_insert(conn, table).on_conflict_do_nothing(), list(rows))


async def insert_notifications(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Notifications have no natural key: one delivered twice (a redelivered entry) is known
    by its account, time and body."""
    if not rows:
        return
    t = channel_notifications
    seen = await conn.execute(
        select(t.c.account, t.c.received_ms, t.c.body).where(
            or_(
                *(
                    and_(t.c.account == row["account"], t.c.received_ms == row["received_ms"])
                    for row in rows
                )
            )
        )
    )
    known = {(a, ms, bytes(body)) for a, ms, body in seen}
    fresh = []
    for row in rows:
        mark = (row["account"], row["received_ms"], row["body"])
        if mark not in known:
            known.add(mark)
            fresh.append(row)
    if fresh:
        await conn.execute(t.insert().values(fresh))


async def update_expiry(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """An API key's only change after it is made: its expiry (a rotation's grace)."""
    for row in rows:
        if row.get("expires_ms") is not None:
            await conn.execute(
                api_keys.update()
                .where(api_keys.c.id == row["id"])
                .values(expires_ms=row["expires_ms"])
            )
