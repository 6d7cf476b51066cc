"""The record's tables (SQLAlchemy Core), the same on PostgreSQL and on the embedded SQLite.

Times are whole milliseconds since the epoch (`*_ms`, BIGINT), as in the Redis records: the
drainer copies them unchanged, and a list's cursor `(created_ms, id)` is exact on both
databases. Amounts are BIGINT minor units. Objects the API answers with carry `version`, a
number that grows with each state change: the drainer upserts by id and keeps the highest.

The ledger is double-entry: a posting (`ledger_postings`) is a set of entries
(`ledger_entries`) on accounts (`ledger_accounts`) whose signed amounts (debit positive,
credit negative) sum to zero per currency. The database refuses anything else (the triggers
are in the first migration, `migrations/versions/0001_record.py`); docs/record.md shows the
postings, and `router.record.ledger` writes them.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
"""Every table of the record, with constraint names fixed so migrations can name them."""

PAYMENT_STATUSES = ("processing", "pending", "succeeded", "failed", "closed")
REFUND_STATUSES = ("pending", "succeeded", "failed")
EVENT_STATES = ("pending", "retrying", "delivered", "dead", "no_endpoint")
ACCOUNT_KINDS = (
    "merchant_receivable",
    "channel_clearing",
    "fees",
    "refunds",
    "settlement",
    "discounts",
)
"""What a ledger account holds (docs/record.md): what is owed to a merchant, what a channel
holds for us, channel fees, refunds paid back to buyers, what was paid out, and coupons the
merchant funds (the channel collected that much less)."""
POSTING_KINDS = (
    "payment_captured",
    "refund_succeeded",
    "channel_fee",
    "settlement",
    "merchant_discount",
)
RECON_RUN_STATUSES = ("running", "done", "failed")
RECON_RESULTS = ("matched", "fixed", "needs_review")
"""What became of a statement line: it agreed with the record, a channel query proved the
record wrong and it was corrected, or it disagrees and waits for a person."""
DISCREPANCY_KINDS = ("missing_here", "missing_there", "status_mismatch", "amount_mismatch")
RESOLUTIONS = ("fixed", "needs_review")
LINE_KINDS = ("payment", "refund")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


Id = String(64)
"""Ids: `pay_`, `re_`, `evt_`, `mch_`, `key_` and the like, at most 64 characters."""

merchants = Table(
    "merchants",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", Text, nullable=False),
    Column("notify_url", Text),
    Column("require_signed", Boolean, nullable=False, server_default="0"),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    # Metadata only: the secret and its hash stay in Redis (sealed), never here.
    Column("id", Id, primary_key=True),
    Column("merchant_id", Id, nullable=False, index=True),
    Column("mode", String(8), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger),
    CheckConstraint("mode IN ('test', 'live')", name="mode"),
)

payments = Table(
    "payments",
    metadata,
    Column("id", Id, primary_key=True),
    # No foreign key to merchants: merchants and payments reach the record by different
    # paths (the drainer copies payments in order per payment, not across objects).
    Column("merchant_id", Id, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("merchant_order_id", String(64), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount_refunded", BigInteger, nullable=False, server_default="0"),
    Column("method", String(16), nullable=False),
    Column("wallet", String(16)),
    Column("channel", String(64)),
    Column("channel_trade_no", String(64)),
    Column("status", String(16), nullable=False),
    Column("action", JSON),
    Column("description", Text, nullable=False),
    Column("notify_url", Text),
    Column("return_url", Text),
    Column("metadata", JSON, nullable=False),
    Column("failure", JSON),
    Column("routing", JSON, nullable=False),
    Column("risk", JSON),
    Column("livemode", Boolean, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger),
    Column("paid_ms", BigInteger),
    Column("updated_ms", BigInteger, nullable=False),
    CheckConstraint("amount > 0", name="amount"),
    CheckConstraint("amount_refunded >= 0 AND amount_refunded <= amount", name="refunded"),
    CheckConstraint("version >= 0", name="version"),
    CheckConstraint(_one_of("status", PAYMENT_STATUSES), name="status"),
    # Lists are newest first by (created_ms, id), the cursor; each filter has its index.
    Index(None, "merchant_id", "created_ms", "id"),
    Index(None, "merchant_id", "status", "created_ms", "id"),
    Index(None, "merchant_id", "method", "created_ms", "id"),
    Index(None, "merchant_id", "wallet", "created_ms", "id"),
    Index(None, "merchant_id", "channel", "created_ms", "id"),
    Index(None, "merchant_id", "merchant_order_id", "created_ms", "id"),
    Index(None, "merchant_id", "amount", "created_ms", "id"),
    Index(None, "channel", "channel_trade_no"),
)

refunds = Table(
    "refunds",
    metadata,
    Column("id", Id, primary_key=True),
    Column("payment_id", Id, ForeignKey("payments.id"), nullable=False),
    Column("merchant_id", Id, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text),
    Column("merchant_refund_id", String(64)),
    Column("channel_refund_no", String(64)),
    Column("failure", JSON),
    Column("livemode", Boolean, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("succeeded_ms", BigInteger),
    Column("updated_ms", BigInteger, nullable=False),
    CheckConstraint("amount > 0", name="amount"),
    CheckConstraint("version >= 0", name="version"),
    CheckConstraint(_one_of("status", REFUND_STATUSES), name="status"),
    Index(None, "payment_id", "created_ms", "id"),
    Index(None, "merchant_id", "created_ms", "id"),
    Index(None, "merchant_id", "merchant_refund_id"),
)

events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True),
    Column("merchant_id", Id, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("type", String(64), nullable=False),
    Column("payment_id", Id),
    Column("data", JSON, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempt_count", Integer, nullable=False, server_default="0"),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    CheckConstraint("version >= 0", name="version"),
    CheckConstraint(_one_of("state", EVENT_STATES), name="state"),
    Index(None, "merchant_id", "created_ms", "id"),
    Index(None, "merchant_id", "type", "created_ms", "id"),
    Index(None, "payment_id"),
)

event_attempts = Table(
    "event_attempts",
    metadata,
    Column("event_id", Id, ForeignKey("events.id"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("at_ms", BigInteger, nullable=False),
    Column("url", Text, nullable=False),
    Column("http_status", Integer),
    Column("outcome", String(32), nullable=False),
    Column("error", Text),
    Column("duration_ms", Integer),
    CheckConstraint("number >= 1", name="number"),
)

channel_notifications = Table(
    "channel_notifications",
    metadata,
    # As received, for audit: the raw body and headers, whatever the verdict on them.
    Column("id", BigInteger().with_variant(Integer, "sqlite"), Identity(), primary_key=True),
    Column("account", String(64), nullable=False),
    Column("received_ms", BigInteger, nullable=False),
    Column("headers", JSON, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("payment_id", Id),
    Column("refund_id", Id),
    Index(None, "account", "received_ms"),
    Index(None, "payment_id"),
)

ledger_accounts = Table(
    "ledger_accounts",
    metadata,
    Column("id", String(160), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("merchant_id", Id),
    Column("channel_account", String(64)),
    Column("currency", String(3), nullable=False),
    CheckConstraint(_one_of("kind", ACCOUNT_KINDS), name="kind"),
    CheckConstraint("(merchant_id IS NULL) <> (channel_account IS NULL)", name="one_owner"),
    # The target of the entries' (account, currency) key: an entry in another currency than
    # its account's cannot be written.
    UniqueConstraint("id", "currency"),
)

ledger_postings = Table(
    "ledger_postings",
    metadata,
    Column("id", String(160), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("payment_id", Id, ForeignKey("payments.id")),
    Column("refund_id", Id, ForeignKey("refunds.id")),
    Column("at_ms", BigInteger, nullable=False),
    Column("memo", Text),
    CheckConstraint(_one_of("kind", POSTING_KINDS), name="kind"),
    Index(None, "payment_id"),
    Index(None, "refund_id"),
    Index(None, "at_ms"),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), Identity(), primary_key=True),
    Column("posting_id", String(160), nullable=False, index=True),
    Column("account_id", String(160), nullable=False, index=True),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    CheckConstraint("amount <> 0", name="amount"),
    # Deferred to the commit: a writer puts a posting's entries first and the posting row
    # last (`router.record.ledger.post`), the order the triggers check.
    ForeignKeyConstraint(
        ["posting_id"],
        ["ledger_postings.id"],
        deferrable=True,
        initially="DEFERRED",
    ),
    ForeignKeyConstraint(
        ["account_id", "currency"], ["ledger_accounts.id", "ledger_accounts.currency"]
    ),
)

# Reconciliation (docs/reconciliation.md). One run per channel account and statement day
# (China time), reconciled again in place: a re-run replaces its lines and discrepancies.

recon_runs = Table(
    "recon_runs",
    metadata,
    Column("id", String(96), primary_key=True),  # rcn_<YYYYMMDD>_<account>
    Column("day", String(10), nullable=False),
    Column("account", String(64), nullable=False),
    Column("wallet", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="1"),
    Column("started_ms", BigInteger, nullable=False),
    Column("finished_ms", BigInteger),
    Column("lines", BigInteger, nullable=False, server_default="0"),
    Column("matched", BigInteger, nullable=False, server_default="0"),
    Column("fixed", Integer, nullable=False, server_default="0"),
    Column("needs_review", Integer, nullable=False, server_default="0"),
    Column("totals", JSON),
    Column("error", Text),
    CheckConstraint(_one_of("status", RECON_RUN_STATUSES), name="status"),
    UniqueConstraint("day", "account"),
    Index(None, "started_ms", "id"),
)

recon_lines = Table(
    "recon_lines",
    metadata,
    Column("run_id", String(96), ForeignKey("recon_runs.id"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("kind", String(8), nullable=False),
    Column("merchant_id", Id),
    Column("livemode", Boolean),
    Column("payment_id", Id),
    Column("refund_id", Id),
    Column("order_no", String(64), nullable=False),
    Column("refund_no", String(64)),
    Column("channel_trade_no", String(64), nullable=False),
    Column("channel_refund_no", String(64)),
    Column("amount", BigInteger, nullable=False),
    Column("settled", BigInteger, nullable=False),
    Column("fee", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("booked_ms", BigInteger, nullable=False),
    Column("result", String(16), nullable=False),
    CheckConstraint(_one_of("kind", LINE_KINDS), name="kind"),
    CheckConstraint(_one_of("result", RECON_RESULTS), name="result"),
    Index(None, "payment_id"),
    Index(None, "refund_id"),
)

recon_discrepancies = Table(
    "recon_discrepancies",
    metadata,
    Column("run_id", String(96), ForeignKey("recon_runs.id"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("seq", Integer),
    Column("kind", String(16), nullable=False),
    Column("merchant_id", Id),
    Column("payment_id", Id),
    Column("refund_id", Id),
    Column("channel_trade_no", String(64)),
    Column("ours", JSON),
    Column("theirs", JSON),
    Column("resolution", String(16), nullable=False),
    Column("note", Text),
    CheckConstraint(_one_of("kind", DISCREPANCY_KINDS), name="kind"),
    CheckConstraint(_one_of("resolution", RESOLUTIONS), name="resolution"),
    Index(None, "payment_id"),
)

# Settlement (T+1): one per merchant, day, currency and mode, from reconciled lines only;
# its lines are copied in, so a later re-run of reconciliation does not change a settlement.

settlements = Table(
    "settlements",
    metadata,
    Column("id", Id, primary_key=True),
    Column("merchant_id", Id, nullable=False),
    Column("day", String(10), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("livemode", Boolean, nullable=False),
    Column("gross", BigInteger, nullable=False),
    Column("refunds", BigInteger, nullable=False),
    Column("discounts", BigInteger, nullable=False),
    Column("fees", BigInteger, nullable=False),
    Column("net", BigInteger, nullable=False),
    Column("payment_count", Integer, nullable=False),
    Column("refund_count", Integer, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    CheckConstraint("net = gross - refunds - discounts - fees", name="net"),
    UniqueConstraint("merchant_id", "day", "currency", "livemode"),
    Index(None, "merchant_id", "created_ms", "id"),
)

settlement_lines = Table(
    "settlement_lines",
    metadata,
    Column("settlement_id", Id, ForeignKey("settlements.id"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("kind", String(8), nullable=False),
    Column("payment_id", Id, nullable=False),
    Column("refund_id", Id),
    Column("merchant_order_id", String(64), nullable=False),
    Column("account", String(64), nullable=False),
    Column("channel_trade_no", String(64), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("discount", BigInteger, nullable=False),
    Column("fee", BigInteger, nullable=False),
    Column("net", BigInteger, nullable=False),
    Column("booked_ms", BigInteger, nullable=False),
    CheckConstraint(_one_of("kind", LINE_KINDS), name="kind"),
)
