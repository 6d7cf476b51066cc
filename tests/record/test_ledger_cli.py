"""`payrouter ledger check` as operators run it (a real process) on PostgreSQL and on the
sandbox's embedded database: exit 0 with the figures when the ledger holds, 1 naming each
mismatch, 2 in one line when the database cannot be used."""

from __future__ import annotations

import asyncio
import json
import subprocess

from router.record import Record
from router.record.postings import post_channel_fee, post_state_changes
from tests.record.conftest import Target
from tests.record.sample_rows import (
    payment_row,
    payments,
    refund_row,
    refunds,
    set_amount,
    upsert,
)
from tests.router.test_cli import one_line_exit_2, payrouter

MCH = "mch_ledgercli01"


async def check(target: Target, *extra: str) -> subprocess.CompletedProcess[str]:
    if target.database_url is not None:
        args, env = ["ledger", "check", *extra], {"PAYROUTER_DATABASE_URL": target.database_url}
    else:
        args, env = ["ledger", "check", "--sandbox-dir", str(target.sandbox_dir), *extra], {}
    return await asyncio.to_thread(payrouter, *args, env=env)


async def test_check_passes_then_names_what_changed(empty: Target, migrated: Record) -> None:
    pay = payment_row(MCH, amount=1999)
    ref = refund_row(pay, 500)
    async with migrated.engine.begin() as conn:
        await upsert(conn, payments, [pay, payment_row(MCH, status="failed")])
        await upsert(conn, refunds, [ref])
        await post_state_changes(conn, [pay], [ref])
        await post_channel_fee(conn, pay["id"], "wechat_main", MCH, "CNY", 12, at_ms=1)

    good = await check(empty)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "ok    postings balance" in good.stdout
    assert "totals per currency: CNY 0" in good.stdout
    line = next(row for row in good.stdout.splitlines() if row.startswith("wechat_main"))
    assert line.split() == ["wechat_main", "CNY", "1999", "500", "12", "0", str(1999 - 500 - 12)]

    as_json = await check(empty, "--json")
    report = json.loads(as_json.stdout)
    assert report["ok"] is True
    assert report["merchants"] == [
        {
            "merchant": MCH,
            "currency": "CNY",
            "captured": 1999,
            "refunded": 500,
            "fees": 12,
            "discounts": 0,
            "settled": 0,
            "receivable": 1999,
        }
    ]

    async with migrated.engine.begin() as conn:
        await set_amount(conn, pay["id"], 2000)
    bad = await check(empty)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "FAIL  ledger matches payments" in bad.stdout
    assert f"payment {pay['id']} is 2000 CNY but was posted as 1999" in bad.stdout


async def test_an_empty_ledger_checks(empty: Target, migrated: Record) -> None:
    result = await check(empty)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no entries" in result.stdout


async def test_a_database_without_the_schema_is_one_line(empty: Target) -> None:
    one_line_exit_2(await check(empty), "payrouter db migrate")
