"""`payrouter settle run` as operators run it (a real process), on PostgreSQL and on the
sandbox's embedded database, over a day written as reconciliation leaves it
(tests/settle/days.py)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from typing import Any

from sqlalchemy import func, select

from router.cli.settle import render
from router.clock import Clock
from router.record import Record
from router.record.audit import check_ledger
from router.record.ledger import balances
from router.record.schema import ledger_postings, settlement_lines, settlements
from router.settle import settle_day
from tests.record.conftest import Target
from tests.router.test_cli import one_line_exit_2, payrouter
from tests.settle.days import DAY, Run, write_day

SHOP, CAFE = "mch_settleshop01", "mch_settlecafe01"


async def settle(target: Target, *extra: str) -> subprocess.CompletedProcess[str]:
    args = ["settle", "run", "--date", DAY, *extra]
    if target.database_url is not None:
        env = {"PAYROUTER_DATABASE_URL": target.database_url}
    else:
        args += ["--sandbox-dir", str(target.sandbox_dir)]
        env = {}
    return await asyncio.to_thread(payrouter, *args, env=env)


async def settle_json(target: Target) -> tuple[int, dict[str, Any]]:
    result = await settle(target, "--json")
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


async def table(record: Record) -> str:
    """What the run prints on a terminal (the day again, in this process: idempotent)."""
    return render(await settle_day(record, DAY, Clock()))


def by_merchant(out: dict[str, Any]) -> dict[tuple[str, str, bool], dict[str, Any]]:
    return {(s["merchant_id"], s["currency"], s["livemode"]): s for s in out["settlements"]}


async def test_a_day_settles_once_with_its_lines_and_posting(
    empty: Target, migrated: Record
) -> None:
    wechat, alipay = Run("wechat_main"), Run("alipay_main")
    big = wechat.pay(SHOP, 10_000, coupon=300, fee=58)
    wechat.pay(SHOP, 1999, fee=12)
    wechat.refund(big, 5000, coupon=150, fee=-29)
    alipay.pay(SHOP, 700, fee=4)
    alipay.pay(SHOP, 123_456, fee=741, result="needs_review")
    alipay.pay(SHOP, 800, currency="USD", fee=5)
    alipay.pay(CAFE, 2500, fee=15, livemode=True)
    async with migrated.engine.begin() as conn:
        await write_day(conn, DAY, [wechat, alipay])

    code, out = await settle_json(empty)
    assert code == 0, out
    assert out["date"] == DAY and out["pending_accounts"] == []
    assert out["needs_review_lines"] == 1
    found = by_merchant(out)
    assert set(found) == {(SHOP, "CNY", False), (SHOP, "USD", False), (CAFE, "CNY", True)}
    shop = found[(SHOP, "CNY", False)]
    assert {k: shop[k] for k in ("gross", "refunds", "discounts", "fees", "net")} == {
        "gross": 10_000 + 1999 + 700,
        "refunds": 5000,
        "discounts": 300 - 150,
        "fees": 58 + 12 - 29 + 4,
        "net": 12_699 - 5000 - 150 - 45,
    }
    assert (shop["payment_count"], shop["refund_count"], shop["created"]) == (3, 1, True)
    assert shop["id"].startswith("stl_")
    assert found[(SHOP, "USD", False)]["net"] == 795
    assert found[(CAFE, "CNY", True)]["net"] == 2485

    async with migrated.engine.connect() as conn:
        lines = (
            (
                await conn.execute(
                    select(settlement_lines).where(settlement_lines.c.settlement_id == shop["id"])
                )
            )
            .mappings()
            .all()
        )
        assert sum(line["net"] for line in lines) == shop["net"]
        assert [line["kind"] for line in lines] == ["payment", "payment", "payment", "refund"]
        assert all(line["merchant_order_id"].startswith("order-") for line in lines)
        report = await check_ledger(conn)
        assert report.ok, report.as_json()
        sheet = await balances(conn)
    # The shop's CNY day is paid out: what it was owed, refunded, charged and discounted is
    # back at zero, except the payment held for review (captured, not settled).
    assert sheet[(f"merchant_receivable:{SHOP}:CNY", "CNY")] == -123_456
    for kind in ("refunds", "fees", "discounts"):
        assert sheet.get((f"{kind}:{SHOP}:CNY", "CNY"), 0) == 0, kind
    assert sheet[(f"settlement:{SHOP}:CNY", "CNY")] == -shop["net"]

    again_code, again = await settle_json(empty)
    assert again_code == 0
    assert by_merchant(again) == {k: v | {"created": False} for k, v in found.items()}
    async with migrated.engine.connect() as conn:
        count = await conn.scalar(select(func.count()).select_from(settlements))
        postings = await conn.scalar(
            select(func.count())
            .select_from(ledger_postings)
            .where(ledger_postings.c.kind == "settlement")
        )
    assert (count, postings) == (3, 3)

    shown = await table(migrated)
    assert "0 settled now, 3 already settled" in shown
    assert SHOP in shown


async def test_an_unfinished_account_holds_the_day(sandbox: Target, sandbox_record: Record) -> None:
    done, running = Run("wechat_main"), Run("alipay_main", status="running")
    done.pay(SHOP, 1000, fee=6)
    running.pay(SHOP, 2000, fee=12)
    async with sandbox_record.engine.begin() as conn:
        await write_day(conn, DAY, [done, running])

    code, out = await settle_json(sandbox)
    assert code == 1
    assert out["pending_accounts"] == ["alipay_main"]
    assert out["settlements"] == []
    assert "not reconciled yet (nothing settled): alipay_main" in await table(sandbox_record)
    async with sandbox_record.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(settlements)) == 0


async def test_refunds_beyond_the_day_owe_the_merchant(
    sandbox: Target, sandbox_record: Record
) -> None:
    earlier, day = Run("unionpay_main"), Run("wechat_main")
    old = earlier.pay(SHOP, 9000, fee=54)
    async with sandbox_record.engine.begin() as conn:
        await write_day(conn, "2026-11-27", [earlier])
    day.pay(SHOP, 1000, fee=6)
    day.refund(old, 9000, fee=-54)
    async with sandbox_record.engine.begin() as conn:
        await write_day(conn, DAY, [day])

    code, out = await settle_json(sandbox)
    assert code == 0
    (shop,) = out["settlements"]
    assert (shop["gross"], shop["refunds"], shop["fees"], shop["net"]) == (1000, 9000, -48, -7952)
    assert f"{SHOP} owes 7952 CNY: refunds exceed payments" in await table(sandbox_record)


async def test_a_day_without_reconciliation_is_not_settled(
    sandbox: Target, sandbox_record: Record
) -> None:
    code, out = await settle_json(sandbox)
    assert (code, out["settlements"], out["pending_accounts"]) == (1, [], [])
    assert "no reconciliation run for this day yet" in await table(sandbox_record)


async def test_a_bad_date_or_database_is_one_line() -> None:
    bad_day = await asyncio.to_thread(payrouter, "settle", "run", "--date", "2026-02-30")
    one_line_exit_2(bad_day, "--date", "2026-02-30")
    unreachable = await asyncio.to_thread(
        payrouter,
        "settle",
        "run",
        env={"PAYROUTER_DATABASE_URL": "postgresql://u@127.0.0.1:1/db"},
    )
    one_line_exit_2(unreachable, "PAYROUTER_DATABASE_URL")
