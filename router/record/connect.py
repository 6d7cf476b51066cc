"""Opening the record: PostgreSQL through asyncpg, or the embedded SQLite of the sandbox.

`PAYROUTER_DATABASE_URL` is `postgresql://...` (libpq's spelling, what operators paste);
SQLAlchemy is given `postgresql+asyncpg://...`. With no URL the record is a SQLite file in
the sandbox folder (`embedded_path`), through aiosqlite: the same tables, the same code.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import URL, event, make_url, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from router.settings import ConfigurationError, redacted

CONNECT_TIMEOUT_S = 5.0
"""How long the first connection may take before the database is called unreachable."""
EMBEDDED_FILE = "record.sqlite3"


def embedded_path(sandbox_dir: Path) -> Path:
    """Where the embedded database lives in a sandbox folder."""
    return sandbox_dir / EMBEDDED_FILE


def engine_url(database_url: str | None, sandbox_dir: Path) -> URL:
    """The SQLAlchemy URL for PAYROUTER_DATABASE_URL (checked by `router.settings`), or for
    the embedded database in `sandbox_dir` when it is None."""
    if database_url is None:
        return URL.create("sqlite+aiosqlite", database=str(embedded_path(sandbox_dir)))
    url = make_url(database_url).set(drivername="postgresql+asyncpg")
    query = dict(url.query)
    if "sslmode" in query:
        # asyncpg takes libpq's modes under the name `ssl`.
        query["ssl"] = query.pop("sslmode")
    return url.set(query=query)


def describe(url: URL) -> str:
    """The database as an operator reads it, without the password."""
    if url.get_backend_name() == "sqlite":
        return f"embedded database {url.database}"
    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return f"PostgreSQL at {redacted(plain)}"


def create_engine(url: URL) -> AsyncEngine:
    """An engine for `url`; nothing is connected until it is used."""
    if url.get_backend_name() != "sqlite":
        return create_async_engine(
            url, pool_pre_ping=True, connect_args={"timeout": CONNECT_TIMEOUT_S}
        )
    if url.database:
        folder = Path(url.database).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot use the sandbox folder {folder} for the embedded database "
                f"(--sandbox-dir or PAYROUTER_SANDBOX_DIR): {exc.strerror or exc}"
            ) from None
    engine = create_async_engine(url)

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, record: Any) -> None:
        # The driver's own transaction handling starts no transaction before DDL and
        # none before SELECT: let SQLAlchemy say BEGIN itself (`_begin`), so a migration
        # and a posting are each one transaction. Foreign keys are off in SQLite unless
        # asked for on every connection; the ledger relies on them (router.record.ledger).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA busy_timeout = 5000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    @event.listens_for(engine.sync_engine, "checkin")
    def _checkin(dbapi_connection: Any, record: Any) -> None:
        # A COMMIT that SQLite refused (a deferred foreign key: entries without their
        # posting) leaves its transaction open, and its write lock held, while SQLAlchemy
        # takes it as ended: end it before the connection goes back to the pool.
        if dbapi_connection is not None and dbapi_connection.driver_connection.in_transaction:
            dbapi_connection.rollback()

    return engine


async def open_engine(url: URL) -> AsyncEngine:
    """An engine for `url` whose first connection worked. Raises `ConfigurationError` naming
    PAYROUTER_DATABASE_URL (password redacted) when nothing answers, the server refuses us,
    or the database does not exist."""
    engine = create_engine(url)
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S + 1), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except TimeoutError:
        await engine.dispose()
        raise ConfigurationError(
            f"PAYROUTER_DATABASE_URL: no answer from {describe(url)} within {CONNECT_TIMEOUT_S:g} s"
        ) from None
    except (SQLAlchemyError, OSError) as exc:
        await engine.dispose()
        raise ConfigurationError(
            f"PAYROUTER_DATABASE_URL: cannot use {describe(url)}: {reason(exc)}"
        ) from None
    except BaseException:
        await engine.dispose()
        raise
    return engine


class RecordUnavailable(Exception):
    """The record's database cannot answer now (down, or refused us): nothing was done, a
    retry is safe. The message is `reason`'s: the driver's words, never the URL."""


def reason(exc: BaseException) -> str:
    """The driver's own words for a failure, on one line, without SQLAlchemy's decoration."""
    inner: BaseException = exc
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        inner = exc.orig
        # SQLAlchemy wraps asyncpg's exception in an adapter: the original is its cause.
        while inner.__cause__ is not None:
            inner = inner.__cause__
    if isinstance(inner, OSError) and inner.strerror:
        return inner.strerror
    return " ".join(str(inner).split()) or type(inner).__name__
