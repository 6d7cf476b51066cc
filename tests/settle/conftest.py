"""The record on both databases, as the record's own tests have it."""

from tests.record.conftest import empty, migrated

__all__ = ["empty", "migrated"]
