"""The record's schema versions: Alembic, run from here on a connection we opened.

`migrate` brings a database to the newest revision this code knows (creating everything on
an empty one; nothing to do on a current one). `check_schema` is what `serve` asks before it
uses a database: a schema older than the code is refused, naming `payrouter db migrate`.
"""

from __future__ import annotations

from dataclasses import dataclass

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

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

    async with engine.begin() as conn:
        return await conn.run_sync(upgrade)


async def downgrade(engine: AsyncEngine, target: str, cfg: Config | None = None) -> None:
    """Step the database back to `target` (`base`: empty). For tests and for operators
    undoing an upgrade by hand; payrouter never calls it."""
    cfg = cfg or config()

    def run(connection: Connection) -> None:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, target)

    async with engine.begin() as conn:
        await conn.run_sync(run)


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
