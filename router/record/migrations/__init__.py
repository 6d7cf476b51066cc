"""The record's Alembic environment and revisions (run by `router.record.migrate`)."""
