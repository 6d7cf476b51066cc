"""The record on both databases: a fresh PostgreSQL database per test (the session's server,
`tests/conftest.py`), and the embedded SQLite in the test's own sandbox folder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from router.record import Record, open_record


@dataclass(frozen=True)
class Target:
    """Where a test's record lives: PAYROUTER_DATABASE_URL (None: embedded) and the sandbox."""

    database_url: str | None
    sandbox_dir: Path

    @property
    def postgres(self) -> bool:
        return self.database_url is not None

    async def open(self) -> Record:
        return await open_record(self.database_url, self.sandbox_dir)


BACKENDS = [pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"]


@pytest.fixture(params=BACKENDS)
def empty(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    """An empty database: a new PostgreSQL database, or a sandbox with no embedded one yet."""
    if request.param == "postgres":
        return Target(str(request.getfixturevalue("postgres_url")), tmp_path)
    return Target(None, tmp_path / "sandbox")


@pytest.fixture
async def migrated(empty: Target) -> AsyncIterator[Record]:
    """An open record at the newest schema, on each database."""
    record = await empty.open()
    await record.migrate()
    try:
        yield record
    finally:
        await record.close()
