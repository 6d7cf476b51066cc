"""Writing the double-entry ledger: accounts, and postings of balanced entries.

Amounts are signed integer minor units: a debit is positive, a credit negative, and a
posting's entries sum to zero in each currency. The database enforces it (the triggers of
the first migration); this module only writes in the order they check: the entries first,
then the posting row, which seals them. docs/record.md shows the postings payrouter makes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Insert, Table, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from router.record.connect import RecordUnavailable, reason
from router.record.schema import (
    ACCOUNT_KINDS,
    ledger_accounts,
    ledger_entries,
    ledger_postings,
)

CHANNEL_KINDS = frozenset({"channel_clearing"})
"""Account kinds owned by a channel account; the others belong to a merchant."""


@dataclass(frozen=True)
class Account:
    """A ledger account: what it holds, whose it is, in which currency."""

    kind: str
    owner: str
    """A merchant id, or a channel account's name for `channel_clearing`."""
    currency: str

    def __post_init__(self) -> None:
        if self.kind not in ACCOUNT_KINDS:
            raise ValueError(f"unknown ledger account kind {self.kind!r}")

    @property
    def id(self) -> str:
        """Derived from what the account is, so any writer finds it without a lookup."""
        return f"{self.kind}:{self.owner}:{self.currency}"


@dataclass(frozen=True)
class Entry:
    """One side of a posting: `amount` > 0 debits `account`, < 0 credits it."""

    account: Account
    amount: int


def _insert_new(conn: AsyncConnection, table: Table) -> Insert:
    """An INSERT that skips rows whose key exists (each dialect spells it its own way)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


async def ensure_accounts(conn: AsyncConnection, accounts: Iterable[Account]) -> None:
    """Create the accounts that do not exist yet."""
    rows = [
        {
            "id": a.id,
            "kind": a.kind,
            "merchant_id": None if a.kind in CHANNEL_KINDS else a.owner,
            "channel_account": a.owner if a.kind in CHANNEL_KINDS else None,
            "currency": a.currency,
        }
        for a in {a.id: a for a in accounts}.values()
    ]
    if rows:
        await conn.execute(_insert_new(conn, ledger_accounts), rows)


async def post(
    conn: AsyncConnection,
    posting_id: str,
    kind: str,
    entries: Sequence[Entry],
    *,
    at_ms: int,
    payment_id: str | None = None,
    refund_id: str | None = None,
    memo: str | None = None,
) -> None:
    """Write one posting with its entries (creating their accounts) in the caller's
    transaction. The database refuses it, at the latest when the transaction commits, unless
    the entries sum to zero per currency."""
    await ensure_accounts(conn, (e.account for e in entries))
    rows = [
        {
            "posting_id": posting_id,
            "account_id": e.account.id,
            "amount": e.amount,
            "currency": e.account.currency,
        }
        for e in entries
    ]
    if rows:
        await conn.execute(insert(ledger_entries), rows)
    await conn.execute(
        insert(ledger_postings).values(
            id=posting_id,
            kind=kind,
            payment_id=payment_id,
            refund_id=refund_id,
            at_ms=at_ms,
            memo=memo,
        )
    )


async def balances(conn: AsyncConnection) -> dict[tuple[str, str], int]:
    """Every account's balance: (account id, currency) -> sum of its entries."""
    rows = await conn.execute(
        select(
            ledger_entries.c.account_id,
            ledger_entries.c.currency,
            func.sum(ledger_entries.c.amount),
        ).group_by(ledger_entries.c.account_id, ledger_entries.c.currency)
    )
    return {(account, currency): int(total) for account, currency, total in rows}


async def totals(conn: AsyncConnection) -> dict[str, int]:
    """The sum of every entry per currency: zero in each when the ledger balances."""
    rows = await conn.execute(
        select(ledger_entries.c.currency, func.sum(ledger_entries.c.amount)).group_by(
            ledger_entries.c.currency
        )
    )
    return {currency: int(total) for currency, total in rows}


@dataclass(frozen=True)
class AccountBalance:
    """One line of the balances report: an account and the sum of its entries."""

    account_id: str
    kind: str
    owner: str
    currency: str
    balance: int
    entries: int


async def account_balances(
    conn: AsyncConnection,
    *,
    merchant: str | None = None,
    kind: str | None = None,
    currency: str | None = None,
) -> list[AccountBalance]:
    """Every account (an account with no entries yet shows 0) with its balance and number
    of entries, by kind, owner and currency; narrowed by whichever filters are given
    (`merchant` keeps the accounts the merchant owns, so no channel clearing)."""
    sums = (
        select(
            ledger_entries.c.account_id,
            func.sum(ledger_entries.c.amount).label("balance"),
            func.count().label("entries"),
        )
        .group_by(ledger_entries.c.account_id)
        .subquery()
    )
    owner = func.coalesce(ledger_accounts.c.merchant_id, ledger_accounts.c.channel_account)
    statement = (
        select(
            ledger_accounts.c.id,
            ledger_accounts.c.kind,
            owner,
            ledger_accounts.c.currency,
            func.coalesce(sums.c.balance, 0),
            func.coalesce(sums.c.entries, 0),
        )
        .select_from(ledger_accounts.outerjoin(sums, sums.c.account_id == ledger_accounts.c.id))
        .order_by(ledger_accounts.c.currency, ledger_accounts.c.kind, owner)
    )
    if merchant is not None:
        statement = statement.where(ledger_accounts.c.merchant_id == merchant)
    if kind is not None:
        statement = statement.where(ledger_accounts.c.kind == kind)
    if currency is not None:
        statement = statement.where(ledger_accounts.c.currency == currency)
    rows = await conn.execute(statement)
    return [
        AccountBalance(account_id, kind_, owner_, currency_, int(balance), int(count))
        for account_id, kind_, owner_, currency_, balance, count in rows
    ]


@dataclass(frozen=True)
class BalanceSheet:
    """The balances report: the accounts asked for, and the totals of the whole ledger."""

    accounts: list[AccountBalance]
    totals: dict[str, int]


async def read_balances(
    engine: AsyncEngine,
    *,
    merchant: str | None = None,
    kind: str | None = None,
    currency: str | None = None,
) -> BalanceSheet:
    """`account_balances` and `totals` in one read; `RecordUnavailable` when the database
    cannot answer."""
    try:
        async with engine.connect() as conn, conn.begin():
            found = await account_balances(conn, merchant=merchant, kind=kind, currency=currency)
            return BalanceSheet(found, dict(sorted((await totals(conn)).items())))
    except (SQLAlchemyError, OSError) as exc:
        raise RecordUnavailable(reason(exc)) from None
