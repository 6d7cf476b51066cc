"""The postings payrouter makes, each exactly once per money movement.

A movement's posting id is derived from what moved (`cap_<payment id>`, `ref_<refund id>`,
`fee_<payment or refund id>`, `dsc_<payment or refund id>`, `stl_<settlement id>`), and a
posting is written only when no posting has that id yet. So the drainer may hand the same
rows over again (a re-drain, a crash between the write and the acknowledgement, rows out of
order): the ledger moves once.

Two writers posting the same movement at once: on PostgreSQL each takes a transaction-level
advisory lock per posting id (in one order, so two writers cannot deadlock on them) before
it looks, so the second waits for the first to commit, then finds the posting and skips it;
its transaction goes on. SQLite takes the database's write lock at BEGIN (`router.record.
connect`), so there is never a second writer to race with.

docs/record.md shows each posting's entries.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from router.record.ledger import Account, Entry, ensure_accounts
from router.record.schema import ledger_entries, ledger_postings, payments

LOCK_NAMESPACE = 0x6C656467
"""First key of the advisory locks taken per posting id (the second is the id's CRC-32); the
migration lock uses PostgreSQL's one-key form, a separate space."""

Row = Mapping[str, Any]
"""A `payments` or `refunds` row as the drainer wrote it: the schema's column names."""


def capture_posting_id(payment_id: str) -> str:
    return f"cap_{payment_id}"


def refund_posting_id(refund_id: str) -> str:
    return f"ref_{refund_id}"


def fee_posting_id(object_id: str) -> str:
    """The fee posting of a payment or of a refund (a channel returning part of its fee)."""
    return f"fee_{object_id}"


def discount_posting_id(object_id: str) -> str:
    """The coupon posting of a payment or of a refund (the coupon's share handed back)."""
    return f"dsc_{object_id}"


def settlement_posting_id(settlement_id: str) -> str:
    return f"stl_{settlement_id}"


@dataclass(frozen=True)
class Movement:
    """One posting to write unless its id is already in the ledger."""

    posting_id: str
    kind: str
    entries: tuple[Entry, ...]
    at_ms: int
    payment_id: str | None = None
    refund_id: str | None = None
    memo: str | None = None


def _lock_key(posting_id: str) -> int:
    crc = zlib.crc32(posting_id.encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


async def _lock(conn: AsyncConnection, posting_ids: Iterable[str]) -> None:
    keys = sorted({_lock_key(p) for p in posting_ids})
    statement = text(
        "SELECT count(pg_advisory_xact_lock(:ns, k)) FROM unnest(CAST(:keys AS int[])) AS k"
    ).bindparams(ns=LOCK_NAMESPACE, keys=keys)
    await conn.execute(statement)


async def post_once(conn: AsyncConnection, movements: Sequence[Movement]) -> list[str]:
    """Write, in the caller's transaction, each movement whose posting id is not in the
    ledger yet; the ids written. Entries of zero are left out (the ledger refuses them)."""
    wanted = {m.posting_id: m for m in movements}
    if not wanted:
        return []
    if conn.dialect.name == "postgresql":
        await _lock(conn, wanted)
    found = await conn.execute(
        select(ledger_postings.c.id).where(
            ledger_postings.c.id.in_(bindparam("ids", expanding=True))
        ),
        {"ids": list(wanted)},
    )
    for (done,) in found:
        wanted.pop(done, None)
    todo = list(wanted.values())
    if not todo:
        return []
    await ensure_accounts(conn, (e.account for m in todo for e in m.entries))
    # Entries first, then the posting rows that seal them: the order the triggers check.
    entries = [
        {
            "posting_id": m.posting_id,
            "account_id": e.account.id,
            "amount": e.amount,
            "currency": e.account.currency,
        }
        for m in todo
        for e in m.entries
        if e.amount
    ]
    if entries:
        await conn.execute(insert(ledger_entries), entries)
    await conn.execute(
        insert(ledger_postings),
        [
            {
                "id": m.posting_id,
                "kind": m.kind,
                "payment_id": m.payment_id,
                "refund_id": m.refund_id,
                "at_ms": m.at_ms,
                "memo": m.memo,
            }
            for m in todo
        ],
    )
    return [m.posting_id for m in todo]


def capture(payment: Row) -> Movement:
    """`payment_captured`: the channel account collected the amount for the merchant."""
    currency = payment["currency"]
    amount = int(payment["amount"])
    return Movement(
        capture_posting_id(payment["id"]),
        "payment_captured",
        (
            Entry(Account("channel_clearing", payment["channel"], currency), amount),
            Entry(Account("merchant_receivable", payment["merchant_id"], currency), -amount),
        ),
        at_ms=int(payment.get("paid_ms") or payment["updated_ms"]),
        payment_id=payment["id"],
    )


def refund(row: Row, channel: str) -> Movement:
    """`refund_succeeded`: paid back to the buyer from what `channel` holds."""
    currency = row["currency"]
    amount = int(row["amount"])
    return Movement(
        refund_posting_id(row["id"]),
        "refund_succeeded",
        (
            Entry(Account("refunds", row["merchant_id"], currency), amount),
            Entry(Account("channel_clearing", channel, currency), -amount),
        ),
        at_ms=int(row.get("succeeded_ms") or row["updated_ms"]),
        refund_id=row["id"],
    )


async def _channels(
    conn: AsyncConnection, refunds: Sequence[Row], payment_rows: Sequence[Row]
) -> dict[str, str]:
    """The channel account of each refund's payment: from the caller's rows, else the
    table (refund rows do not carry it)."""
    known = {p["id"]: p["channel"] for p in payment_rows}
    missing = {r["payment_id"] for r in refunds} - known.keys()
    if missing:
        found = await conn.execute(
            select(payments.c.id, payments.c.channel).where(
                payments.c.id.in_(bindparam("ids", expanding=True))
            ),
            {"ids": sorted(missing)},
        )
        known.update({pay_id: channel for pay_id, channel in found})
    return known


async def post_state_changes(
    conn: AsyncConnection, payment_rows: Sequence[Row], refund_rows: Sequence[Row] = ()
) -> list[str]:
    """The postings of the payments and refunds the drainer just upserted, in its
    transaction: `payment_captured` for each `succeeded` payment, `refund_succeeded` for each
    `succeeded` refund; each at most once whatever the number of calls. The ids written.

    A refund whose payment is in neither `payment_rows` nor the table raises `LookupError`
    (the refunds table's foreign key makes that a caller's bug)."""
    captured = [capture(p) for p in payment_rows if p["status"] == "succeeded"]
    succeeded = [r for r in refund_rows if r["status"] == "succeeded"]
    channels = await _channels(conn, succeeded, payment_rows) if succeeded else {}
    refunded = []
    for row in succeeded:
        channel = channels.get(row["payment_id"])
        if channel is None:
            raise LookupError(f"refund {row['id']}: payment {row['payment_id']} is not recorded")
        refunded.append(refund(row, channel))
    return await post_once(conn, [*captured, *refunded])


async def post_channel_fee(
    conn: AsyncConnection,
    object_id: str,
    account: str,
    merchant: str,
    currency: str,
    amount: int,
    *,
    at_ms: int,
) -> bool:
    """`channel_fee`: what channel account `account` kept of a payment's (or gave back of a
    refund's, `amount` < 0) money, borne by `merchant`. `object_id` is the payment's or the
    refund's id. False when that fee was already posted (or `amount` is 0)."""
    return await _merchant_borne(
        conn,
        "channel_fee",
        fee_posting_id(object_id),
        "fees",
        object_id,
        account,
        merchant,
        currency,
        amount,
        at_ms,
    )


async def post_merchant_discount(
    conn: AsyncConnection,
    object_id: str,
    account: str,
    merchant: str,
    currency: str,
    amount: int,
    *,
    at_ms: int,
) -> bool:
    """`merchant_discount`: a coupon `merchant` funds, so channel account `account` collected
    `amount` less than the payment's amount (or, `amount` < 0, paid that much less back on a
    refund: the coupon's share). `object_id` is the payment's or the refund's id. False when
    that coupon was already posted (or `amount` is 0)."""
    return await _merchant_borne(
        conn,
        "merchant_discount",
        discount_posting_id(object_id),
        "discounts",
        object_id,
        account,
        merchant,
        currency,
        amount,
        at_ms,
    )


async def _merchant_borne(
    conn: AsyncConnection,
    kind: str,
    posting_id: str,
    merchant_account: str,
    object_id: str,
    account: str,
    merchant: str,
    currency: str,
    amount: int,
    at_ms: int,
) -> bool:
    """A posting moving `amount` from channel account `account` onto one of `merchant`'s
    accounts (`fees`, `discounts`), tied to the payment or refund `object_id`."""
    if amount == 0:
        return False
    is_refund = object_id.startswith("re_")
    movement = Movement(
        posting_id,
        kind,
        (
            Entry(Account(merchant_account, merchant, currency), amount),
            Entry(Account("channel_clearing", account, currency), -amount),
        ),
        at_ms=at_ms,
        payment_id=None if is_refund else object_id,
        refund_id=object_id if is_refund else None,
    )
    return bool(await post_once(conn, [movement]))


async def post_settlement(
    conn: AsyncConnection,
    settlement_id: str,
    merchant: str,
    currency: str,
    *,
    gross: int,
    refunded: int,
    fees: int,
    discounts: int = 0,
    at_ms: int,
    memo: str | None = None,
) -> bool:
    """`settlement`: pay out to `merchant` the net of what it was paid (`gross`), minus what
    was refunded, the coupons it funded (`discounts`) and the fees, clearing its receivable,
    refunds, discounts and fees by those amounts. False when `settlement_id` was already
    posted, or when there is nothing to move."""
    net = gross - refunded - discounts - fees
    entries = (
        Entry(Account("merchant_receivable", merchant, currency), gross),
        Entry(Account("refunds", merchant, currency), -refunded),
        Entry(Account("discounts", merchant, currency), -discounts),
        Entry(Account("fees", merchant, currency), -fees),
        Entry(Account("settlement", merchant, currency), -net),
    )
    if sum(1 for e in entries if e.amount) < 2:
        return False
    movement = Movement(
        settlement_posting_id(settlement_id), "settlement", entries, at_ms=at_ms, memo=memo
    )
    return bool(await post_once(conn, [movement]))
