"""`check_ledger` fails, naming the fault, for each kind of damage the database lets through:
a posting on the wrong account, an account named unlike what it is, a payment whose status
changed behind the ledger, and (SQLite, from a connection without foreign keys) entries
whose posting never came."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import insert, update

from router.record import Record, embedded_path
from router.record.audit import check_ledger
from router.record.ledger import Account, Entry, post
from router.record.postings import post_state_changes
from router.record.schema import ledger_accounts
from tests.record.conftest import Target
from tests.record.sample_rows import payment_row, payments, upsert

MCH = "mch_ledgerchk01"


async def problems(record: Record) -> dict[str, list[str]]:
    async with record.engine.connect() as conn:
        report = await check_ledger(conn)
    return {c.name: c.problems for c in report.checks}


async def test_a_posting_on_the_wrong_account(migrated: Record) -> None:
    pay = payment_row(MCH, amount=800)
    async with migrated.engine.begin() as conn:
        await upsert(conn, payments, [pay])
        await post_state_changes(conn, [pay])
        # A fee taken from the merchant's receivable instead of the channel's clearing.
        await post(
            conn,
            "fee_wrong",
            "channel_fee",
            [
                Entry(Account("fees", MCH, "CNY"), 5),
                Entry(Account("merchant_receivable", MCH, "CNY"), -5),
            ],
            at_ms=1,
        )
    found = await problems(migrated)
    assert found["postings balance"] == found["accounts balance"] == []
    assert found["ledger matches payments"] == [
        f"merchant_receivable:{MCH}:CNY is -805, expected -800 (settled 0 - captured 800)"
    ]


async def test_an_account_named_unlike_what_it_is(migrated: Record) -> None:
    async with migrated.engine.begin() as conn:
        await conn.execute(
            insert(ledger_accounts).values(
                id="fees:someone_else:CNY", kind="fees", merchant_id=MCH, currency="CNY"
            )
        )
    assert (await problems(migrated))["accounts balance"] == [
        "account fees:someone_else:CNY is named unlike its kind, owner and currency"
    ]


async def test_a_payment_no_longer_succeeded(migrated: Record) -> None:
    pay = payment_row(MCH, amount=300)
    async with migrated.engine.begin() as conn:
        await upsert(conn, payments, [pay])
        await post_state_changes(conn, [pay])
        await conn.execute(
            update(payments).where(payments.c.id == pay["id"]).values(status="failed")
        )
    found = (await problems(migrated))["ledger matches payments"]
    assert f"posting cap_{pay['id']}: payment {pay['id']} is failed, not succeeded" in found
    assert f"{MCH} CNY: succeeded payments total 0, the ledger captured 300" in found


async def test_entries_without_their_posting(empty: Target, migrated: Record) -> None:
    if empty.postgres:
        pytest.skip("PostgreSQL refuses them at COMMIT on every connection")
    async with migrated.engine.begin() as conn:
        await post(
            conn,
            "pst_real",
            "channel_fee",
            [
                Entry(Account("fees", MCH, "CNY"), 1),
                Entry(Account("channel_clearing", "wechat_main", "CNY"), -1),
            ],
            at_ms=1,
        )
    # The sqlite3 shell's view of the file: foreign keys off, so the deferred check is gone.
    raw = sqlite3.connect(embedded_path(empty.sandbox_dir))
    try:
        raw.executemany(
            "INSERT INTO ledger_entries (posting_id, account_id, amount, currency) "
            "VALUES ('pst_ghost', ?, ?, 'CNY')",
            [(f"fees:{MCH}:CNY", 4), ("channel_clearing:wechat_main:CNY", -3)],
        )
        raw.commit()
    finally:
        raw.close()
    found = await problems(migrated)
    assert found["postings balance"] == [
        "posting pst_ghost does not balance: 1 CNY left over",
        "2 entries name posting pst_ghost, which does not exist",
    ]
    assert found["accounts balance"] == ["the CNY entries sum to 1, not 0"]
