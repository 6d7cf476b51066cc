"""`payrouter ledger check`: proves the ledger balances and matches the payments' totals.

Three groups of checks (docs/record.md, "Checking the ledger"):

- postings: each has two entries or more, summing to zero per currency; no entry without
  its posting;
- accounts: each entry's account exists in the entry's currency, each account's id is
  `kind:owner:currency`, and the entries of each currency sum to zero;
- payments: per merchant and currency, what the ledger says was captured and refunded is the
  sum of the succeeded payments and refunds in the record, each of them posted once with its
  amount; each channel account's clearing balance is what it captured, less what it refunded,
  the fees it kept and the merchant-funded coupons it never collected; each merchant's
  receivable is what it was paid less what was settled, and its refunds account what was
  refunded less what was settled.

Balances are not stored: an account's balance is always the sum of its entries, which the
second group holds to its account and currency.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Select, and_, func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from router.record.postings import capture_posting_id, refund_posting_id
from router.record.schema import ledger_accounts, ledger_entries, ledger_postings, payments
from router.record.schema import refunds as refunds_table

MAX_NAMED = 20
"""Problems named per check; the rest are counted."""


@dataclass
class Check:
    """One property and what breaks it."""

    name: str
    problems: list[str] = field(default_factory=list)
    more: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, problem: str) -> None:
        if len(self.problems) < MAX_NAMED:
            self.problems.append(problem)
        else:
            self.more += 1


@dataclass
class MerchantLine:
    """What the ledger and the record say about one merchant in one currency."""

    merchant: str
    currency: str
    captured: int = 0
    refunded: int = 0
    fees: int = 0
    discounts: int = 0
    settled: int = 0
    receivable: int = 0


@dataclass
class ChannelLine:
    """One channel account's clearing balance and what it is made of."""

    account: str
    currency: str
    captured: int = 0
    refunded: int = 0
    fees: int = 0
    discounts: int = 0
    clearing: int = 0


@dataclass
class Report:
    """Every check, the per-merchant and per-channel figures, and the totals per currency."""

    checks: list[Check]
    merchants: list[MerchantLine]
    channels: list[ChannelLine]
    totals: dict[str, int]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checks": [
                {"name": c.name, "ok": c.ok, "problems": c.problems, "more": c.more}
                for c in self.checks
            ],
            "merchants": [asdict(m) for m in self.merchants],
            "channels": [asdict(c) for c in self.channels],
            "totals": self.totals,
        }


async def _postings(conn: AsyncConnection) -> Check:
    check = Check("postings balance")
    e, p = ledger_entries, ledger_postings
    unbalanced = (
        select(e.c.posting_id, e.c.currency, func.sum(e.c.amount))
        .group_by(e.c.posting_id, e.c.currency)
        .having(func.sum(e.c.amount) != 0)
        .order_by(e.c.posting_id)
    )
    for pid, currency, left in await conn.execute(unbalanced):
        check.add(f"posting {pid} does not balance: {left} {currency} left over")
    thin = (
        select(p.c.id, func.count(e.c.id))
        .select_from(p.outerjoin(e, e.c.posting_id == p.c.id))
        .group_by(p.c.id)
        .having(func.count(e.c.id) < 2)
        .order_by(p.c.id)
    )
    for pid, count in await conn.execute(thin):
        check.add(f"posting {pid} has {count} entries (fewer than two)")
    orphans = (
        select(e.c.posting_id, func.count())
        .select_from(e.outerjoin(p, p.c.id == e.c.posting_id))
        .where(p.c.id.is_(None))
        .group_by(e.c.posting_id)
        .order_by(e.c.posting_id)
    )
    for pid, count in await conn.execute(orphans):
        check.add(f"{count} entries name posting {pid}, which does not exist")
    return check


async def _accounts(conn: AsyncConnection, totals: dict[str, int]) -> Check:
    check = Check("accounts balance")
    e, a = ledger_entries, ledger_accounts
    stray = (
        select(e.c.account_id, e.c.currency, func.count())
        .select_from(e.outerjoin(a, and_(a.c.id == e.c.account_id, a.c.currency == e.c.currency)))
        .where(a.c.id.is_(None))
        .group_by(e.c.account_id, e.c.currency)
    )
    for account, currency, count in await conn.execute(stray):
        check.add(
            f"{count} entries in {currency} on account {account}, not an account in {currency}"
        )
    owner = func.coalesce(a.c.merchant_id, a.c.channel_account)
    for account, kind, who, currency in await conn.execute(
        select(a.c.id, a.c.kind, owner, a.c.currency)
    ):
        if account != f"{kind}:{who}:{currency}":
            check.add(f"account {account} is named unlike its kind, owner and currency")
    for currency, total in sorted(totals.items()):
        if total != 0:
            check.add(f"the {currency} entries sum to {total}, not 0")
    return check


def _missing_or_wrong(table: Any, posting_id: Any) -> Select[Any]:
    """Succeeded objects of `table` whose posting is missing or moved another amount."""
    moved = (
        select(ledger_entries.c.posting_id, func.sum(ledger_entries.c.amount).label("amount"))
        .where(ledger_entries.c.amount > 0)
        .group_by(ledger_entries.c.posting_id)
        .subquery()
    )
    return (
        select(table.c.id, table.c.amount, table.c.currency, moved.c.amount)
        .select_from(table.outerjoin(moved, moved.c.posting_id == posting_id))
        .where(table.c.status == "succeeded")
        .where((moved.c.amount.is_(None)) | (moved.c.amount != table.c.amount))
        .order_by(table.c.id)
    )


async def _objects(conn: AsyncConnection, check: Check) -> None:
    """Each succeeded payment and refund posted once, with its amount; no posting for one
    that did not succeed."""
    for noun, table, pid in (
        ("payment", payments, literal(capture_posting_id("")) + payments.c.id),
        ("refund", refunds_table, literal(refund_posting_id("")) + refunds_table.c.id),
    ):
        for obj_id, amount, currency, posted in await conn.execute(_missing_or_wrong(table, pid)):
            if posted is None:
                check.add(f"{noun} {obj_id} succeeded ({amount} {currency}) but is not posted")
            else:
                check.add(f"{noun} {obj_id} is {amount} {currency} but was posted as {posted}")
    p = ledger_postings
    for noun, table, column, kind in (
        ("payment", payments, p.c.payment_id, "payment_captured"),
        ("refund", refunds_table, p.c.refund_id, "refund_succeeded"),
    ):
        stray = (
            select(p.c.id, table.c.id, table.c.status)
            .select_from(p.join(table, table.c.id == column))
            .where(p.c.kind == kind, table.c.status != "succeeded")
        )
        for posting, obj_id, status in await conn.execute(stray):
            check.add(f"posting {posting}: {noun} {obj_id} is {status}, not succeeded")


async def _figures(
    conn: AsyncConnection,
) -> tuple[dict[tuple[str, str], MerchantLine], dict[tuple[str, str], ChannelLine], Check]:
    """What the record says each merchant and channel account moved, beside the ledger."""
    check = Check("ledger matches payments")
    merchants: dict[tuple[str, str], MerchantLine] = {}
    channels: dict[tuple[str, str], ChannelLine] = {}

    def mline(mch: str, cur: str) -> MerchantLine:
        return merchants.setdefault((mch, cur), MerchantLine(mch, cur))

    def cline(acct: str, cur: str) -> ChannelLine:
        return channels.setdefault((acct, cur), ChannelLine(acct, cur))

    paid = (
        select(payments.c.merchant_id, payments.c.channel, payments.c.currency)
        .add_columns(func.sum(payments.c.amount))
        .where(payments.c.status == "succeeded")
        .group_by(payments.c.merchant_id, payments.c.channel, payments.c.currency)
    )
    for mch, channel, cur, total in await conn.execute(paid):
        mline(mch, cur).captured += int(total)
        cline(channel, cur).captured += int(total)
    r = refunds_table
    refunded = (
        select(r.c.merchant_id, payments.c.channel, r.c.currency, func.sum(r.c.amount))
        .select_from(r.join(payments, payments.c.id == r.c.payment_id))
        .where(r.c.status == "succeeded")
        .group_by(r.c.merchant_id, payments.c.channel, r.c.currency)
    )
    for mch, channel, cur, total in await conn.execute(refunded):
        mline(mch, cur).refunded += int(total)
        cline(channel, cur).refunded += int(total)

    a, e, p = ledger_accounts, ledger_entries, ledger_postings
    owner = func.coalesce(a.c.merchant_id, a.c.channel_account)
    moved = (
        select(p.c.kind, a.c.kind, owner, a.c.currency, func.sum(e.c.amount))
        .select_from(e.join(p, p.c.id == e.c.posting_id).join(a, a.c.id == e.c.account_id))
        .group_by(p.c.kind, a.c.kind, owner, a.c.currency)
    )
    ledger: dict[tuple[str, str, str, str], int] = defaultdict(int)
    balance: dict[tuple[str, str, str], int] = defaultdict(int)
    for posting_kind, account_kind, who, cur, total in await conn.execute(moved):
        ledger[posting_kind, account_kind, who, cur] = int(total)
        balance[account_kind, who, cur] += int(total)
        if account_kind == "channel_clearing":
            cline(who, cur)
        else:
            mline(who, cur)

    for (mch, cur), m in sorted(merchants.items()):
        captured = -ledger["payment_captured", "merchant_receivable", mch, cur]
        refunds = ledger["refund_succeeded", "refunds", mch, cur]
        settled_gross = ledger["settlement", "merchant_receivable", mch, cur]
        settled_refunds = -ledger["settlement", "refunds", mch, cur]
        m.fees = ledger["channel_fee", "fees", mch, cur]
        m.discounts = ledger["merchant_discount", "discounts", mch, cur]
        m.settled = -ledger["settlement", "settlement", mch, cur]
        m.receivable = -balance["merchant_receivable", mch, cur]
        if captured != m.captured:
            check.add(
                f"{mch} {cur}: succeeded payments total {m.captured}, the ledger captured "
                f"{captured}"
            )
        if refunds != m.refunded:
            check.add(
                f"{mch} {cur}: succeeded refunds total {m.refunded}, the ledger refunded {refunds}"
            )
        if -m.receivable != settled_gross - m.captured:
            check.add(
                f"merchant_receivable:{mch}:{cur} is {-m.receivable}, expected "
                f"{settled_gross - m.captured} (settled {settled_gross} - captured {m.captured})"
            )
        if balance["refunds", mch, cur] != m.refunded - settled_refunds:
            check.add(
                f"refunds:{mch}:{cur} is {balance['refunds', mch, cur]}, expected "
                f"{m.refunded - settled_refunds} (refunded {m.refunded} - settled "
                f"{settled_refunds})"
            )
    for (acct, cur), c in sorted(channels.items()):
        c.fees = -ledger["channel_fee", "channel_clearing", acct, cur]
        c.discounts = -ledger["merchant_discount", "channel_clearing", acct, cur]
        c.clearing = balance["channel_clearing", acct, cur]
        expected = c.captured - c.refunded - c.fees - c.discounts
        if c.clearing != expected:
            check.add(
                f"channel_clearing:{acct}:{cur} is {c.clearing}, expected {expected} (captured "
                f"{c.captured} - refunded {c.refunded} - fees {c.fees} - discounts "
                f"{c.discounts})"
            )
    return merchants, channels, check


async def check_ledger(conn: AsyncConnection) -> Report:
    """Run every check in one read (call it inside a transaction for one snapshot)."""
    totals = {
        cur: int(total)
        for cur, total in await conn.execute(
            select(ledger_entries.c.currency, func.sum(ledger_entries.c.amount)).group_by(
                ledger_entries.c.currency
            )
        )
    }
    postings = await _postings(conn)
    accounts = await _accounts(conn, totals)
    merchants, channels, matches = await _figures(conn)
    await _objects(conn, matches)
    return Report(
        [postings, accounts, matches],
        [merchants[k] for k in sorted(merchants)],
        [channels[k] for k in sorted(channels)],
        dict(sorted(totals.items())),
    )
