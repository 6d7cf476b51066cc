"""The ledger balances by construction: the database itself refuses a posting whose entries
do not sum to zero per currency (at COMMIT on PostgreSQL, at the posting row on SQLite), an
entry in another currency than its account's, entries without a posting, and any change to
what was written."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from router.record import Record
from router.record.ledger import Account, Entry, balances, post, totals
from router.record.schema import ledger_entries, ledger_postings

MCH = "mch_test0001"
RECEIVABLE = Account("merchant_receivable", MCH, "CNY")
CLEARING = Account("channel_clearing", "wechat_main", "CNY")
FEES = Account("fees", MCH, "CNY")
_IDS = itertools.count(1)


def posting_id() -> str:
    return f"pst_{next(_IDS)}"


async def write(record: Record, entries: Sequence[Entry], pid: str | None = None) -> str:
    """One posting in a transaction of its own; raises what the database refused."""
    pid = pid or posting_id()
    async with record.engine.begin() as conn:
        await post(conn, pid, "payment_captured", entries, at_ms=1_700_000_000_000)
    return pid


async def counts(record: Record) -> tuple[int, int]:
    async with record.engine.connect() as conn:
        postings = await conn.scalar(select(func.count()).select_from(ledger_postings))
        entries = await conn.scalar(select(func.count()).select_from(ledger_entries))
    return int(postings or 0), int(entries or 0)


async def test_a_balanced_posting_commits(migrated: Record) -> None:
    await write(migrated, [Entry(CLEARING, 1999), Entry(RECEIVABLE, -1999)])
    await write(migrated, [Entry(RECEIVABLE, 60), Entry(FEES, 12), Entry(CLEARING, -72)])
    async with migrated.engine.connect() as conn:
        assert await totals(conn) == {"CNY": 0}
        assert await balances(conn) == {
            (CLEARING.id, "CNY"): 1999 - 72,
            (RECEIVABLE.id, "CNY"): -1999 + 60,
            (FEES.id, "CNY"): 12,
        }


@pytest.mark.parametrize(
    "entries",
    [
        [Entry(CLEARING, 1999), Entry(RECEIVABLE, -1998)],
        [Entry(CLEARING, 1999)],
        [],
        # Balanced in sum, not per currency.
        [Entry(CLEARING, 100), Entry(Account("merchant_receivable", MCH, "USD"), -100)],
    ],
    ids=["off-by-one", "one-entry", "no-entry", "across-currencies"],
)
async def test_an_unbalanced_posting_is_refused(migrated: Record, entries: list[Entry]) -> None:
    with pytest.raises(DBAPIError, match=r"balance|fewer than two"):
        await write(migrated, entries)
    assert await counts(migrated) == (0, 0)


@pytest.mark.postgres
async def test_postgres_refuses_at_commit(postgres_migrated_url: str) -> None:
    from router.record import open_record

    record = await open_record(postgres_migrated_url)
    try:
        async with record.engine.connect() as conn:
            # Every statement is accepted: the check is deferred to the commit...
            await post(
                conn,
                "pst_late",
                "payment_captured",
                [Entry(CLEARING, 5), Entry(RECEIVABLE, -4)],
                at_ms=1,
            )
            with pytest.raises(DBAPIError, match="does not balance"):
                await conn.commit()
        assert await counts(record) == (0, 0)
    finally:
        await record.close()


async def test_entries_in_another_currency_than_their_account_are_refused(
    migrated: Record,
) -> None:
    await write(migrated, [Entry(CLEARING, 1), Entry(RECEIVABLE, -1)])
    async with migrated.engine.connect() as conn:
        with pytest.raises(DBAPIError, match=r"(?i)foreign key"):
            await conn.execute(
                insert(ledger_entries).values(
                    posting_id="pst_x", account_id=CLEARING.id, amount=1, currency="USD"
                )
            )


async def test_entries_without_a_posting_are_refused_at_commit(migrated: Record) -> None:
    await write(migrated, [Entry(CLEARING, 1), Entry(RECEIVABLE, -1)])
    async with migrated.engine.connect() as conn:
        await conn.execute(
            insert(ledger_entries),
            [
                {
                    "posting_id": "pst_none",
                    "account_id": CLEARING.id,
                    "amount": 7,
                    "currency": "CNY",
                },
                {
                    "posting_id": "pst_none",
                    "account_id": RECEIVABLE.id,
                    "amount": -7,
                    "currency": "CNY",
                },
            ],
        )
        with pytest.raises(DBAPIError):
            await conn.commit()
    assert await counts(migrated) == (1, 2)


async def test_a_written_posting_is_sealed(migrated: Record) -> None:
    pid = await write(migrated, [Entry(CLEARING, 10), Entry(RECEIVABLE, -10)])
    # Two more entries that balance each other still change the posting: refused.
    async with migrated.engine.connect() as conn:
        with pytest.raises(DBAPIError, match="already written"):
            await conn.execute(
                insert(ledger_entries),
                [
                    {"posting_id": pid, "account_id": CLEARING.id, "amount": 5, "currency": "CNY"},
                    {
                        "posting_id": pid,
                        "account_id": RECEIVABLE.id,
                        "amount": -5,
                        "currency": "CNY",
                    },
                ],
            )
    assert await counts(migrated) == (1, 2)


@pytest.mark.parametrize(
    "statement",
    [
        update(ledger_entries).values(amount=ledger_entries.c.amount * 2),
        delete(ledger_entries),
        update(ledger_postings).values(memo="changed"),
        delete(ledger_postings),
    ],
    ids=["update-entries", "delete-entries", "update-postings", "delete-postings"],
)
async def test_the_ledger_is_append_only(migrated: Record, statement: object) -> None:
    await write(migrated, [Entry(CLEARING, 10), Entry(RECEIVABLE, -10)])
    async with migrated.engine.connect() as conn:
        with pytest.raises(DBAPIError, match="append-only"):
            await conn.execute(statement)  # type: ignore[call-overload]
    assert await counts(migrated) == (1, 2)


@pytest.mark.postgres
@pytest.mark.parametrize("table", ["ledger_entries", "ledger_postings"])
async def test_postgres_refuses_truncate(postgres_migrated_url: str, table: str) -> None:
    from router.record import open_record

    record = await open_record(postgres_migrated_url)
    try:
        async with record.engine.connect() as conn:
            with pytest.raises(DBAPIError, match="append-only"):
                await conn.execute(text(f"TRUNCATE {table} CASCADE"))
    finally:
        await record.close()


CURRENCIES = ("CNY", "USD", "HKD")
OWNERS = ("mch_a0000001", "mch_b0000002")
amounts = st.integers(min_value=-(10**12), max_value=10**12).filter(bool)


@st.composite
def balanced(draw: st.DrawFn) -> list[Entry]:
    """Entries on random accounts that sum to zero in each of their currencies."""
    entries: list[Entry] = []
    for currency in draw(
        st.lists(st.sampled_from(CURRENCIES), min_size=1, max_size=2, unique=True)
    ):
        pool = [
            Account(kind, owner, currency)
            for kind in ("merchant_receivable", "fees", "refunds")
            for owner in OWNERS
        ]
        pool.append(Account("channel_clearing", "wechat_main", currency))
        lines = draw(st.lists(st.tuples(st.sampled_from(pool), amounts), min_size=1, max_size=3))
        rest = -sum(amount for _, amount in lines)
        if rest == 0:
            lines = [*lines[:-1], (lines[-1][0], lines[-1][1] + 1)]
            rest = -1
        entries += [Entry(account, amount) for account, amount in lines]
        entries.append(Entry(draw(st.sampled_from(pool)), rest))
    return entries


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    history=st.lists(
        st.tuples(balanced(), st.integers(min_value=-5, max_value=5)), min_size=1, max_size=6
    )
)
async def test_random_histories_keep_every_currency_at_zero(
    migrated: Record, history: list[tuple[list[Entry], int]]
) -> None:
    for entries, skew in history:
        before = await counts(migrated)
        if skew == 0:
            await write(migrated, entries)
            assert (await counts(migrated))[0] == before[0] + 1
            continue
        first = entries[0]
        amount = first.amount + skew if first.amount + skew != 0 else first.amount - skew
        with pytest.raises(DBAPIError):
            await write(migrated, [Entry(first.account, amount), *entries[1:]])
        assert await counts(migrated) == before
    async with migrated.engine.connect() as conn:
        assert set((await totals(conn)).values()) <= {0}
