"""Reconciliation runs, their lines and discrepancies; settlements; coupons in the ledger

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30

`recon_runs` (one per channel account and statement day), `recon_lines` (every statement line
of a run's last attempt, with what became of it), `recon_discrepancies`; `settlements` (one
per merchant, day, currency and mode) and `settlement_lines` (copies of the reconciled lines
each one settled). The ledger gains the `discounts` account kind and the `merchant_discount`
posting kind: a coupon the merchant funds is money the channel never collected.

SQLite cannot change a CHECK constraint in place: `ledger_accounts` and `ledger_postings` are
rebuilt (Alembic's batch mode, foreign keys off: `router.record.migrate`), and the triggers
naming `ledger_postings` (its own, which a rebuild drops, and the entries' seal, which would
stop it) are installed again.
"""

from __future__ import annotations

import importlib

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_first = importlib.import_module("router.record.migrations.versions.0001_record")

ACCOUNTS = ("merchant_receivable", "channel_clearing", "fees", "refunds", "settlement")
POSTINGS = ("payment_captured", "refund_succeeded", "channel_fee", "settlement")
NEW_ACCOUNT = "discounts"
NEW_POSTING = "merchant_discount"


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _kinds(accounts: tuple[str, ...], postings: tuple[str, ...]) -> None:
    """Set the ledger's two kind constraints to these lists."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        # A trigger naming a table being rebuilt stops the rebuild's DROP and RENAME.
        op.execute("DROP TRIGGER IF EXISTS ledger_entries_sealed")
    for table, values in (("ledger_accounts", accounts), ("ledger_postings", postings)):
        name = op.f(f"ck_{table}_kind")
        if sqlite:
            with op.batch_alter_table(table, recreate="always") as batch:
                batch.drop_constraint(name, type_="check")
                batch.create_check_constraint(name, _one_of("kind", values))
        else:
            op.drop_constraint(name, table, type_="check")
            op.create_check_constraint(name, table, _one_of("kind", values))
    if sqlite:
        # The rebuilt table's own triggers went with the old one; the entries' seal too.
        for statement in _first.SQLITE_RULES:
            if "ledger_postings" in statement:
                op.execute(statement)


def upgrade() -> None:
    _kinds((*ACCOUNTS, NEW_ACCOUNT), (*POSTINGS, NEW_POSTING))
    op.create_table(
        "recon_runs",
        sa.Column("id", sa.String(length=96), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("wallet", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="1", nullable=False),
        sa.Column("started_ms", sa.BigInteger(), nullable=False),
        sa.Column("finished_ms", sa.BigInteger(), nullable=True),
        sa.Column("lines", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("matched", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("fixed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("needs_review", sa.Integer(), server_default="0", nullable=False),
        sa.Column("totals", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'done', 'failed')", name=op.f("ck_recon_runs_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recon_runs")),
        sa.UniqueConstraint("day", "account", name=op.f("uq_recon_runs_day_account")),
    )
    op.create_index(
        op.f("ix_recon_runs_started_ms_id"), "recon_runs", ["started_ms", "id"], unique=False
    )
    op.create_table(
        "recon_lines",
        sa.Column("run_id", sa.String(length=96), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("merchant_id", sa.String(length=64), nullable=True),
        sa.Column("livemode", sa.Boolean(), nullable=True),
        sa.Column("payment_id", sa.String(length=64), nullable=True),
        sa.Column("refund_id", sa.String(length=64), nullable=True),
        sa.Column("order_no", sa.String(length=64), nullable=False),
        sa.Column("refund_no", sa.String(length=64), nullable=True),
        sa.Column("channel_trade_no", sa.String(length=64), nullable=False),
        sa.Column("channel_refund_no", sa.String(length=64), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("settled", sa.BigInteger(), nullable=False),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("booked_ms", sa.BigInteger(), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.CheckConstraint("kind IN ('payment', 'refund')", name=op.f("ck_recon_lines_kind")),
        sa.CheckConstraint(
            "result IN ('matched', 'fixed', 'needs_review')", name=op.f("ck_recon_lines_result")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["recon_runs.id"], name=op.f("fk_recon_lines_run_id_recon_runs")
        ),
        sa.PrimaryKeyConstraint("run_id", "seq", name=op.f("pk_recon_lines")),
    )
    op.create_index(op.f("ix_recon_lines_payment_id"), "recon_lines", ["payment_id"])
    op.create_index(op.f("ix_recon_lines_refund_id"), "recon_lines", ["refund_id"])
    op.create_table(
        "recon_discrepancies",
        sa.Column("run_id", sa.String(length=96), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("merchant_id", sa.String(length=64), nullable=True),
        sa.Column("payment_id", sa.String(length=64), nullable=True),
        sa.Column("refund_id", sa.String(length=64), nullable=True),
        sa.Column("channel_trade_no", sa.String(length=64), nullable=True),
        sa.Column("ours", sa.JSON(), nullable=True),
        sa.Column("theirs", sa.JSON(), nullable=True),
        sa.Column("resolution", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('missing_here', 'missing_there', 'status_mismatch', 'amount_mismatch')",
            name=op.f("ck_recon_discrepancies_kind"),
        ),
        sa.CheckConstraint(
            "resolution IN ('fixed', 'needs_review')",
            name=op.f("ck_recon_discrepancies_resolution"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["recon_runs.id"], name=op.f("fk_recon_discrepancies_run_id_recon_runs")
        ),
        sa.PrimaryKeyConstraint("run_id", "number", name=op.f("pk_recon_discrepancies")),
    )
    op.create_index(
        op.f("ix_recon_discrepancies_payment_id"), "recon_discrepancies", ["payment_id"]
    )
    op.create_table(
        "settlements",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("merchant_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("gross", sa.BigInteger(), nullable=False),
        sa.Column("refunds", sa.BigInteger(), nullable=False),
        sa.Column("discounts", sa.BigInteger(), nullable=False),
        sa.Column("fees", sa.BigInteger(), nullable=False),
        sa.Column("net", sa.BigInteger(), nullable=False),
        sa.Column("payment_count", sa.Integer(), nullable=False),
        sa.Column("refund_count", sa.Integer(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "net = gross - refunds - discounts - fees", name=op.f("ck_settlements_net")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlements")),
        sa.UniqueConstraint(
            "merchant_id",
            "day",
            "currency",
            "livemode",
            name=op.f("uq_settlements_merchant_id_day_currency_livemode"),
        ),
    )
    op.create_index(
        op.f("ix_settlements_merchant_id_created_ms_id"),
        "settlements",
        ["merchant_id", "created_ms", "id"],
    )
    op.create_table(
        "settlement_lines",
        sa.Column("settlement_id", sa.String(length=64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("payment_id", sa.String(length=64), nullable=False),
        sa.Column("refund_id", sa.String(length=64), nullable=True),
        sa.Column("merchant_order_id", sa.String(length=64), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("channel_trade_no", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("discount", sa.BigInteger(), nullable=False),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.Column("net", sa.BigInteger(), nullable=False),
        sa.Column("booked_ms", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("kind IN ('payment', 'refund')", name=op.f("ck_settlement_lines_kind")),
        sa.ForeignKeyConstraint(
            ["settlement_id"],
            ["settlements.id"],
            name=op.f("fk_settlement_lines_settlement_id_settlements"),
        ),
        sa.PrimaryKeyConstraint("settlement_id", "number", name=op.f("pk_settlement_lines")),
    )


def downgrade() -> None:
    # Refused while a coupon is in the ledger (the constraint no longer admits its rows).
    for table in (
        "settlement_lines",
        "settlements",
        "recon_discrepancies",
        "recon_lines",
        "recon_runs",
    ):
        op.drop_table(table)
    _kinds(ACCOUNTS, POSTINGS)
