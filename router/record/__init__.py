"""The durable record in a SQL database: PostgreSQL in production, an embedded SQLite file in
the sandbox. Redis stays the hot path; the record keeps every payment, refund and event, the
channel notifications as received, and the double-entry ledger (docs/record.md).

Only this package talks SQL (SQLAlchemy Core over asyncpg or aiosqlite, Alembic for the
schema): `tests/test_imports.py` holds it to that.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from router.record.connect import describe, embedded_path, engine_url, open_engine, reason
from router.record.migrate import Migrated, check_schema, current, head, migrate
from router.settings import ConfigurationError


@dataclass
class Record:
    """An open record: its engine and what to call it in messages."""

    engine: AsyncEngine
    description: str
    embedded: bool

    async def migrate(self) -> Migrated:
        """`migrate` the schema; a failure (no right to create tables, say) is a
        `ConfigurationError` naming the database."""
        try:
            return await migrate(self.engine)
        except SQLAlchemyError as exc:
            raise ConfigurationError(
                f"PAYROUTER_DATABASE_URL: cannot migrate {self.description}: {reason(exc)}"
            ) from None

    async def close(self) -> None:
        await self.engine.dispose()


async def open_record(database_url: str | None, sandbox_dir: Path = Path(".sandbox")) -> Record:
    """Connect to PAYROUTER_DATABASE_URL, or open the embedded database in `sandbox_dir`
    when it is None. Raises `ConfigurationError` when it cannot be used."""
    url = engine_url(database_url, sandbox_dir)
    engine = await open_engine(url)
    return Record(engine, describe(url), embedded=database_url is None)


async def open_checked(database_url: str | None, sandbox_dir: Path = Path(".sandbox")) -> Record:
    """`open_record`, then `check_schema`: what a router does before it uses the record."""
    record = await open_record(database_url, sandbox_dir)
    try:
        await check_schema(record.engine)
    except BaseException:
        await record.close()
        raise
    return record


__all__ = [
    "Migrated",
    "Record",
    "check_schema",
    "current",
    "embedded_path",
    "head",
    "migrate",
    "open_checked",
    "open_record",
]
