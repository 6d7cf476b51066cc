"""The record's schema versions: Alembic, run from here on a connection we opened.

`migrate` brings a database to the newest revision this code knows (creating everything on
an empty one; nothing to do on a current one). `check_schema` is what `serve` asks before it
uses a database: a schema older than the code is refused, naming `payrouter db migrate`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from router.settings import ConfigurationError

SCRIPTS = "router.record:migrations"
"""The revisions, as a package resource: found wherever payrouter is installed."""
MIGRATE_LOCK = 0x70617972
"""PostgreSQL advisory lock taken by `migrate`, so two at once run one after the other."""


def config(script_location: str = SCRIPTS) -> Config:
    """An Alembic configuration with no ini file: everything it needs is set here."""
    cfg = Config()
    cfg.set_main_option("script_location", script_location)
    return cfg


def head(cfg: Config | None = None) -> str:
    """The newest revision the code knows."""
    found = ScriptDirectory.from_config(cfg or config()).get_current_head()
    assert found is not None, "the record has at least one revision"
    return found


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current(engine: AsyncEngine) -> str | None:
    """The revision the database is at; None for a database with no schema."""
    async with engine.connect() as conn:
        return await conn.run_sync(_current)


@dataclass(frozen=True)
class Migrated:
    """What `migrate` did: the revision before (None: empty) and after."""

    before: str | None
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


async def migrate(engine: AsyncEngine, cfg: Config | None = None, target: str = "head") -> Migrated:
    """Upgrade the database to `target` in one transaction (PostgreSQL's DDL is
    transactional; so is SQLite's). Idempotent."""
    cfg = cfg or config()

    def upgrade(connection: Connection) -> Migrated:
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATE_LOCK})"))
        before = _current(connection)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, target)
        after = _current(connection)
        assert after is not None
        return Migrated(before, after)

    async with engine.connect() as conn, _foreign_keys_off(conn):
        async with conn.begin():
            migrated = await conn.run_sync(upgrade)
            await conn.run_sync(_check_foreign_keys)
        return migrated


@asynccontextmanager
async def _foreign_keys_off(conn: AsyncConnection) -> AsyncIterator[None]:
    """On SQLite, foreign keys off while migrating: a revision that rebuilds a table (SQLite
    alters little in place) drops it first, which foreign keys would refuse. Off and on only
    outside a transaction (SQLite ignores the pragma inside one); `_check_foreign_keys`
    checks every row before the migration commits. Nothing on PostgreSQL."""
    if conn.dialect.name != "sqlite":
        yield
        return
    await conn.run_sync(_pragma, "PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        await conn.run_sync(_pragma, "PRAGMA foreign_keys = ON")


def _pragma(connection: Connection, statement: str) -> None:
    # On the driver's connection: through SQLAlchemy it would open the transaction first.
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(statement)
    finally:
        cursor.close()


def _check_foreign_keys(connection: Connection) -> None:
    if connection.dialect.name != "sqlite":
        return
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"the migration left rows whose foreign keys fail: {broken[:5]}")


async def downgrade(engine: AsyncEngine, target: str, cfg: Config | None = None) -> None:
    """Step the database back to `target` (`base`: empty). For tests and for operators
    undoing an upgrade by hand; payrouter never calls it."""
    cfg = cfg or config()

    def run(connection: Connection) -> None:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, target)

    async with engine.connect() as conn, _foreign_keys_off(conn), conn.begin():
        await conn.run_sync(run)
        await conn.run_sync(_check_foreign_keys)


async def check_schema(engine: AsyncEngine, cfg: Config | None = None) -> str:
    """The database's revision when it is the code's; raises `ConfigurationError` naming
    `payrouter db migrate` for an empty or older schema, and naming an upgrade of payrouter
    for a revision this code does not know (a newer payrouter migrated it)."""
    scripts = ScriptDirectory.from_config(cfg or config())
    newest = scripts.get_current_head()
    found = await current(engine)
    if found == newest and found is not None:
        return found
    if found is None:
        raise ConfigurationError(
            "PAYROUTER_DATABASE_URL: the database has no payrouter schema yet: run "
            "`payrouter db migrate`"
        )
    try:
        scripts.get_revision(found)
    except CommandError:
        raise ConfigurationError(
            f"PAYROUTER_DATABASE_URL: the database's schema is at revision {found}, which "
            f"this payrouter does not know (it expects {newest}): a newer payrouter migrated "
            "it; run that version"
        ) from None
    raise ConfigurationError(
        f"PAYROUTER_DATABASE_URL: the database's schema (revision {found}) is older than "
        f"this payrouter's ({newest}): run `payrouter db migrate`"
    )
