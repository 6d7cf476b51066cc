"""The record: objects, notifications and the ledger

Revision ID: 0001
Revises:
Create Date: 2026-11-29

Every table of `router.record.schema` as first written, and the ledger's triggers: a
posting whose entries do not sum to zero per currency cannot be committed, and postings and
entries are append-only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("merchant_id", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("mode IN ('test', 'live')", name=op.f("ck_api_keys_mode")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
    )
    op.create_index(op.f("ix_api_keys_merchant_id"), "api_keys", ["merchant_id"], unique=False)

    op.create_table(
        "channel_notifications",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.Identity(always=False),
            nullable=False,
        ),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("payment_id", sa.String(length=64), nullable=True),
        sa.Column("refund_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_notifications")),
    )
    op.create_index(
        op.f("ix_channel_notifications_account_received_ms"),
        "channel_notifications",
        ["account", "received_ms"],
        unique=False,
    )
    op.create_index(
        op.f("ix_channel_notifications_payment_id"),
        "channel_notifications",
        ["payment_id"],
        unique=False,
    )

    op.create_table(
        "events",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("merchant_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("payment_id", sa.String(length=64), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempt_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "state IN ('pending', 'retrying', 'delivered', 'dead', 'no_endpoint')",
            name=op.f("ck_events_state"),
        ),
        sa.CheckConstraint("version >= 0", name=op.f("ck_events_version")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index(
        op.f("ix_events_merchant_id_created_ms_id"),
        "events",
        ["merchant_id", "created_ms", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_events_merchant_id_type_created_ms_id"),
        "events",
        ["merchant_id", "type", "created_ms", "id"],
        unique=False,
    )
    op.create_index(op.f("ix_events_payment_id"), "events", ["payment_id"], unique=False)

    op.create_table(
        "ledger_accounts",
        sa.Column("id", sa.String(length=160), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("merchant_id", sa.String(length=64), nullable=True),
        sa.Column("channel_account", sa.String(length=64), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.CheckConstraint(
            "kind IN ('merchant_receivable', 'channel_clearing', 'fees', 'refunds', 'settlement')",
            name=op.f("ck_ledger_accounts_kind"),
        ),
        sa.CheckConstraint(
            "(merchant_id IS NULL) <> (channel_account IS NULL)",
            name=op.f("ck_ledger_accounts_one_owner"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_accounts")),
        sa.UniqueConstraint("id", "currency", name=op.f("uq_ledger_accounts_id_currency")),
    )
    op.create_table(
        "merchants",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("notify_url", sa.Text(), nullable=True),
        sa.Column("require_signed", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchants")),
    )
    op.create_table(
        "payments",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("merchant_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("merchant_order_id", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_refunded", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("wallet", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("channel_trade_no", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("action", sa.JSON(), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("notify_url", sa.Text(), nullable=True),
        sa.Column("return_url", sa.Text(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("failure", sa.JSON(), nullable=True),
        sa.Column("routing", sa.JSON(), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=True),
        sa.Column("paid_ms", sa.BigInteger(), nullable=True),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "status IN ('processing', 'pending', 'succeeded', 'failed', 'closed')",
            name=op.f("ck_payments_status"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payments_amount")),
        sa.CheckConstraint(
            "amount_refunded >= 0 AND amount_refunded <= amount", name=op.f("ck_payments_refunded")
        ),
        sa.CheckConstraint("version >= 0", name=op.f("ck_payments_version")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
    )
    op.create_index(
        op.f("ix_payments_channel_channel_trade_no"),
        "payments",
        ["channel", "channel_trade_no"],
        unique=False,
    )
    op.create_index(
        op.f("ix_payments_merchant_id_amount_created_ms_id"),
        "payments",
        ["merchant_id", "amount", "created_ms", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_payments_merchant_id_channel_created_ms_id"),
        "payments",
        ["merchant_id", "channel", "created_ms", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_payments_merchant_id_created_ms_id"),
        "payments",
        ["merchant_id", "created_ms", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_payments_merchant_id_merchant_order_id_created_ms_id"),
        "payments",
        ["merchant_id", "merchant_order_id", "created_ms", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_payments_merchant_id_method_created_ms_id"),
        "payments",
        ["merchant_id", "method", "created_ms", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_payments_merchant_id_status_created_ms_id"),
        "payments",
        ["merchant_id", "status", "created_ms", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_payments_merchant_id_wallet_created_ms_id"),
        "payments",
        ["merchant_id", "wallet", "created_ms", "id"],
        unique=False,
    )

    op.create_table(
        "event_attempts",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.CheckConstraint("number >= 1", name=op.f("ck_event_attempts_number")),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_event_attempts_event_id_events")
        ),
        sa.PrimaryKeyConstraint("event_id", "number", name=op.f("pk_event_attempts")),
    )
    op.create_table(
        "refunds",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("payment_id", sa.String(length=64), nullable=False),
        sa.Column("merchant_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("merchant_refund_id", sa.String(length=64), nullable=True),
        sa.Column("channel_refund_no", sa.String(length=64), nullable=True),
        sa.Column("failure", sa.JSON(), nullable=True),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("succeeded_ms", sa.BigInteger(), nullable=True),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'succeeded', 'failed')", name=op.f("ck_refunds_status")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_refunds_amount")),
        sa.CheckConstraint("version >= 0", name=op.f("ck_refunds_version")),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_refunds_payment_id_payments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
    )
    op.create_index(
        op.f("ix_refunds_merchant_id_created_ms_id"),
        "refunds",
        ["merchant_id", "created_ms", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_refunds_merchant_id_merchant_refund_id"),
        "refunds",
        ["merchant_id", "merchant_refund_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_refunds_payment_id_created_ms_id"),
        "refunds",
        ["payment_id", "created_ms", "id"],
        unique=False,
    )

    op.create_table(
        "ledger_postings",
        sa.Column("id", sa.String(length=160), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("payment_id", sa.String(length=64), nullable=True),
        sa.Column("refund_id", sa.String(length=64), nullable=True),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("memo", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('payment_captured', 'refund_succeeded', 'channel_fee', 'settlement')",
            name=op.f("ck_ledger_postings_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_ledger_postings_payment_id_payments")
        ),
        sa.ForeignKeyConstraint(
            ["refund_id"], ["refunds.id"], name=op.f("fk_ledger_postings_refund_id_refunds")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_postings")),
    )
    op.create_index(op.f("ix_ledger_postings_at_ms"), "ledger_postings", ["at_ms"], unique=False)
    op.create_index(
        op.f("ix_ledger_postings_payment_id"), "ledger_postings", ["payment_id"], unique=False
    )
    op.create_index(
        op.f("ix_ledger_postings_refund_id"), "ledger_postings", ["refund_id"], unique=False
    )

    op.create_table(
        "ledger_entries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.Identity(always=False),
            nullable=False,
        ),
        sa.Column("posting_id", sa.String(length=160), nullable=False),
        sa.Column("account_id", sa.String(length=160), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_ledger_entries_amount")),
        sa.ForeignKeyConstraint(
            ["account_id", "currency"],
            ["ledger_accounts.id", "ledger_accounts.currency"],
            name=op.f("fk_ledger_entries_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["posting_id"],
            ["ledger_postings.id"],
            name=op.f("fk_ledger_entries_posting_id_ledger_postings"),
            initially="DEFERRED",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
    )
    op.create_index(
        op.f("ix_ledger_entries_account_id"), "ledger_entries", ["account_id"], unique=False
    )
    op.create_index(
        op.f("ix_ledger_entries_posting_id"), "ledger_entries", ["posting_id"], unique=False
    )

    ledger_rules(op.get_bind().dialect.name)


def downgrade() -> None:
    # Dropping a table drops its triggers; the functions they ran go after.
    for table in TABLES:
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_DROP)


TABLES = (
    "ledger_entries",
    "ledger_postings",
    "ledger_accounts",
    "refunds",
    "event_attempts",
    "events",
    "payments",
    "merchants",
    "api_keys",
    "channel_notifications",
)
"""Every table, those that refer to others first."""

# The ledger's rules. A posting is written as its entries first, then the posting row, which
# seals it: an entry for a posting already written is refused, so a posting never changes
# once written (on both databases). Postings and entries are append-only.
#
# PostgreSQL checks the balance at COMMIT (constraint triggers, DEFERRABLE INITIALLY
# DEFERRED): a transaction that leaves any posting unbalanced in any currency, or with fewer
# than two entries, is rolled back whole, whatever order it wrote in.

PG_RULES = (
    """
    CREATE FUNCTION ledger_check_posting(pid text) RETURNS void LANGUAGE plpgsql AS $$
    DECLARE
        bad record;
    BEGIN
        IF (SELECT count(*) FROM ledger_entries WHERE posting_id = pid) < 2 THEN
            RAISE EXCEPTION 'ledger posting % has fewer than two entries', pid
                USING ERRCODE = 'check_violation';
        END IF;
        SELECT currency, sum(amount) AS total INTO bad FROM ledger_entries
            WHERE posting_id = pid GROUP BY currency HAVING sum(amount) <> 0 LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'ledger posting % does not balance: % % left over',
                pid, bad.total, bad.currency USING ERRCODE = 'check_violation';
        END IF;
    END $$
    """,
    """
    CREATE FUNCTION ledger_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM ledger_check_posting(NEW.posting_id);
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION ledger_posting_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM ledger_check_posting(NEW.id);
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION ledger_entry_unsealed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM ledger_postings WHERE id = NEW.posting_id) THEN
            RAISE EXCEPTION 'ledger posting % is already written: its entries cannot change',
                NEW.posting_id USING ERRCODE = 'restrict_violation';
        END IF;
        RETURN NEW;
    END $$
    """,
    """
    CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
            USING ERRCODE = 'restrict_violation';
    END $$
    """,
    """
    CREATE CONSTRAINT TRIGGER ledger_entries_balance AFTER INSERT ON ledger_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_entry_balanced()
    """,
    """
    CREATE CONSTRAINT TRIGGER ledger_postings_balance AFTER INSERT ON ledger_postings
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_posting_balanced()
    """,
    """
    CREATE TRIGGER ledger_entries_sealed BEFORE INSERT ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_entry_unsealed()
    """,
    """
    CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only()
    """,
    """
    CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only()
    """,
    """
    CREATE TRIGGER ledger_postings_append_only BEFORE UPDATE OR DELETE ON ledger_postings
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only()
    """,
    """
    CREATE TRIGGER ledger_postings_no_truncate BEFORE TRUNCATE ON ledger_postings
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only()
    """,
)

PG_DROP = (
    "DROP FUNCTION ledger_entry_balanced, ledger_posting_balanced, ledger_entry_unsealed, "
    "ledger_append_only, ledger_check_posting"
)

# SQLite has no deferred triggers: nothing can run at COMMIT except the foreign-key check.
# So the balance is checked when the posting row is inserted, over the entries written
# before it (a posting inserted before its entries, or with unbalanced ones, is refused at
# once), and an entry whose posting row never comes fails the deferred foreign key at
# COMMIT. What SQLite cannot do: foreign keys are enforced only on connections that turned
# them on (`PRAGMA foreign_keys = ON`, which `router.record.connect` does on each of its
# own); a connection that does not, such as the sqlite3 shell, can leave entries without a
# posting. Balance and append-only hold on every connection (plain triggers).

SQLITE_RULES = (
    """
    CREATE TRIGGER ledger_postings_balance BEFORE INSERT ON ledger_postings
    WHEN (SELECT count(*) FROM ledger_entries WHERE posting_id = NEW.id) < 2
      OR EXISTS (SELECT 1 FROM ledger_entries WHERE posting_id = NEW.id
                 GROUP BY currency HAVING sum(amount) <> 0)
    BEGIN
        SELECT RAISE(ABORT, 'ledger posting does not balance (or has fewer than two entries)');
    END
    """,
    """
    CREATE TRIGGER ledger_entries_sealed BEFORE INSERT ON ledger_entries
    WHEN EXISTS (SELECT 1 FROM ledger_postings WHERE id = NEW.posting_id)
    BEGIN
        SELECT RAISE(ABORT, 'ledger posting is already written: its entries cannot change');
    END
    """,
    *(
        f"""
        CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table}
        BEGIN
            SELECT RAISE(ABORT, '{table} is append-only: {verb} refused');
        END
        """
        for table in ("ledger_entries", "ledger_postings")
        for verb in ("UPDATE", "DELETE")
    ),
)


def ledger_rules(dialect: str) -> None:
    """Install the ledger's triggers for `dialect` (postgresql or sqlite)."""
    rules = {"postgresql": PG_RULES, "sqlite": SQLITE_RULES}[dialect]
    for statement in rules:
        op.execute(statement)
