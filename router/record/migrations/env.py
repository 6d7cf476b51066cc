"""Alembic's environment for the record: run by `router.record.migrate` on a connection it
opened (never from an alembic.ini in the working folder)."""

from __future__ import annotations

from alembic import context

from router.record.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("the record's migrations run through `payrouter db migrate`")
context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite alters a table by copying it: later revisions use batch operations.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
