"""The record's schema: `migrate` creates it from nothing, does nothing the second time, and
`check_schema` refuses a database whose schema is not the code's, naming what to run."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, text

import router.record
from router.record import Record, check_schema, current, head, migrate, open_record
from router.record.migrate import config, downgrade
from router.record.schema import metadata
from router.settings import ConfigurationError
from tests.record.conftest import Target

MIGRATIONS = Path(router.record.__file__).parent / "migrations"
TABLES = set(metadata.tables)


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def tables(record: Record) -> set[str]:
    async with record.engine.connect() as conn:
        return await conn.run_sync(_tables)


async def test_migrate_from_empty_then_again(empty: Target) -> None:
    record = await empty.open()
    try:
        assert await current(record.engine) is None
        first = await record.migrate()
        assert (first.before, first.after) == (None, head())
        assert await tables(record) >= TABLES
        again = await record.migrate()
        assert (again.before, again.after, again.changed) == (head(), head(), False)
        assert await check_schema(record.engine) == head()
    finally:
        await record.close()


def _differences(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), metadata))


async def test_the_migrations_build_exactly_the_declared_schema(migrated: Record) -> None:
    # schema.py and the revisions must not drift apart: what the migrations built is what
    # the code declares (tables, columns, indexes, constraints).
    async with migrated.engine.connect() as conn:
        assert await conn.run_sync(_differences) == []


async def test_an_empty_database_is_refused_naming_the_command(empty: Target) -> None:
    record = await empty.open()
    try:
        with pytest.raises(ConfigurationError, match="payrouter db migrate") as caught:
            await check_schema(record.engine)
        assert "PAYROUTER_DATABASE_URL" in caught.value.line()
    finally:
        await record.close()


def _newer_code(tmp_path: Path) -> str:
    """The revisions of a payrouter one schema change ahead of this one."""
    scripts = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "9999_next.py").write_text(
        f'''"""A later schema change."""

import sqlalchemy as sa
from alembic import op

revision = "9999"
down_revision = "{head()}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("merchants", sa.Column("country", sa.String(2)))


def downgrade() -> None:
    with op.batch_alter_table("merchants") as batch:
        batch.drop_column("country")
'''
    )
    return str(scripts)


async def test_a_schema_older_than_the_code_is_refused(migrated: Record, tmp_path: Path) -> None:
    newer = config(_newer_code(tmp_path))
    with pytest.raises(ConfigurationError, match="older than") as caught:
        await check_schema(migrated.engine, newer)
    assert "`payrouter db migrate`" in caught.value.line()
    assert head() in caught.value.line()

    done = await migrate(migrated.engine, newer)
    assert (done.before, done.after) == (head(), "9999")
    assert await check_schema(migrated.engine, newer) == "9999"

    # One step back down: refused again, and this code's own check passes on it.
    await downgrade(migrated.engine, head(), newer)
    with pytest.raises(ConfigurationError, match="payrouter db migrate"):
        await check_schema(migrated.engine, newer)
    assert await check_schema(migrated.engine) == head()


async def test_a_schema_from_a_newer_payrouter_is_refused(migrated: Record) -> None:
    async with migrated.engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(ConfigurationError, match="newer payrouter") as caught:
        await check_schema(migrated.engine)
    assert "9999" in caught.value.line()


async def test_downgrade_to_empty_and_up_again(migrated: Record) -> None:
    await downgrade(migrated.engine, "base")
    assert await current(migrated.engine) is None
    assert not TABLES & await tables(migrated)
    await migrated.migrate()
    assert await tables(migrated) >= TABLES


@pytest.mark.postgres
async def test_two_migrations_at_once_run_one_after_the_other(postgres_url: str) -> None:
    # Two routers' deploy steps at the same moment: one creates, the other finds it current.
    first, second = await open_record(postgres_url), await open_record(postgres_url)
    try:
        done = await asyncio.gather(first.migrate(), second.migrate())
    finally:
        await first.close()
        await second.close()
    assert sorted((d.before or "", d.after) for d in done) == [("", head()), (head(), head())]
