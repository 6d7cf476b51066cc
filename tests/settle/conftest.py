"""The record on both databases, as the record's own tests have it (`empty`, `migrated`),
and the embedded one alone (`sandbox`, `sandbox_record`) for tests whose point is not the
database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from router.record import Record
from tests.record.conftest import Target, empty, migrated

__all__ = ["empty", "migrated", "sandbox", "sandbox_record"]


@pytest.fixture
def sandbox(tmp_path: Path) -> Target:
    """A sandbox folder with no embedded database yet."""
    return Target(None, tmp_path / "sandbox")


@pytest.fixture
async def sandbox_record(sandbox: Target) -> AsyncIterator[Record]:
    """The sandbox's embedded database at the newest schema."""
    record = await sandbox.open()
    await record.migrate()
    try:
        yield record
    finally:
        await record.close()
