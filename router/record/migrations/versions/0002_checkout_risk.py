"""Payments: checkouts with no channel yet, and the risk decision

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

A hosted checkout is a payment before any wallet is chosen, and one that expires unopened
never gets one: `wallet` and `channel` may be null. Every payment carries the risk rules'
decision (`risk`, JSON: decision and the rules that fired).

SQLite cannot drop a NOT NULL in place: the table is rebuilt (Alembic's batch mode), which
`router.record.migrate` runs with foreign keys off and checks afterwards.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.alter_column("wallet", existing_type=sa.String(length=16), nullable=True)
        batch.alter_column("channel", existing_type=sa.String(length=64), nullable=True)
        batch.add_column(sa.Column("risk", sa.JSON(), nullable=True))


def downgrade() -> None:
    # Refused while a checkout without a wallet is recorded: there is nothing to put back.
    with op.batch_alter_table("payments") as batch:
        batch.drop_column("risk")
        batch.alter_column("channel", existing_type=sa.String(length=64), nullable=False)
        batch.alter_column("wallet", existing_type=sa.String(length=16), nullable=False)
