"""Reconciliation of a day against each channel's running simulator: real payments and
refunds through the router, drained into its record, then every kind of discrepancy injected
through the simulators' control plane (or the record changed behind the router's back)."""

from __future__ import annotations

import csv
import io
from datetime import datetime, time, timedelta

import pytest
from sqlalchemy import func, select

from channels.statement import CHINA_TIME
from channels.unionpay.protocol.wire import to_order_id
from router.api.middleware import RUNTIME
from router.app import RECORD
from router.metrics import Metrics
from router.recon.fix import reconcile, refresh_gauges
from router.recon.report import RunReport
from router.record.ledger import read_balances
from router.record.schema import ledger_postings, recon_lines, recon_runs
from router.settle import settle_day
from tests.channels.harness import Harness
from tests.e2e.conftest import WALLETS, Router
from tests.recon.conftest import (
    Control,
    Harnesses,
    paid,
    recorded,
    refunded,
    sql,
    today,
)


def held(h: Harness, order_no: str) -> str:
    """The order number as the channel holds it (UnionPay's orderId differs from ours)."""
    return to_order_id(order_no) if h.name == "unionpay" else order_no


async def run(r: Router, wallet: str) -> RunReport:
    [report] = await reconcile(r.worker, r.app[RECORD].engine, today(), [f"{wallet}_main"])
    return report


async def postings(r: Router) -> int:
    async with r.app[RECORD].engine.connect() as conn:
        return int(
            (await conn.execute(select(func.count()).select_from(ledger_postings))).scalar_one()
        )


async def balance(r: Router, kind: str) -> int:
    sheet = await read_balances(r.app[RECORD].engine, merchant=r.merchant_id, kind=kind)
    return sum(a.balance for a in sheet.accounts)


@pytest.mark.parametrize("wallet", WALLETS)
async def test_a_clean_day_matches_every_line_and_posts_fees_and_coupons(
    rr: Router, harnesses: Harnesses, control: Control, wallet: str
) -> None:
    h = harnesses[0][wallet]
    first = await paid(rr, h, 1999)
    second = await paid(rr, h, 10_000)
    await control(h, "coupon", {"order_no": held(h, second["id"]), "amount": 800})
    back = await refunded(rr, second["id"], 5_000)
    for ident in (first["id"], second["id"], back["id"]):
        await recorded(rr, ident)

    report = await run(rr, wallet)

    assert (report.status, report.lines, report.matched) == ("done", 3, 3)
    assert (report.fixed, report.needs_review, report.discrepancies) == (0, 0, [])
    cny = report.totals["CNY"]
    assert (cny["payments"], cny["refunds"], cny["discounts"]) == (11_999, 5_000, 800 - 400)
    # What the statement says the channel kept and the merchant funded is what the ledger holds.
    assert await balance(rr, "fees") == cny["fees"] != 0
    assert await balance(rr, "discounts") == cny["discounts"]
    async with rr.app[RECORD].engine.connect() as conn:
        results = (await conn.execute(select(recon_lines.c.result, recon_lines.c.payment_id))).all()
    assert sorted(results) == sorted(
        [("matched", first["id"]), ("matched", second["id"]), ("matched", second["id"])]
    )

    before = await postings(rr)
    again = await run(rr, wallet)
    assert again.as_json() == report.as_json()
    assert again.attempts == 2 and again.postings == 0
    assert await postings(rr) == before

    # T+1: the reconciled day settles, and the merchant downloads its lines.
    outcome = await settle_day(rr.app[RECORD], today().isoformat(), rr.clock)
    assert outcome.complete
    [made] = outcome.settlements
    assert (made["merchant_id"], made["gross"], made["refunds"]) == (rr.merchant_id, 11_999, 5_000)
    assert (made["discounts"], made["fees"]) == (400, cny["fees"])
    assert made["net"] == 11_999 - 5_000 - 400 - cny["fees"]
    async with rr.http.get(
        f"{rr.url}/v1/settlements/{made['id']}/lines",
        headers=rr.auth | {"Accept": "text/csv"},
    ) as resp:
        assert resp.status == 200
        rows = list(csv.DictReader(io.StringIO(await resp.text())))
    assert sorted((r["kind"], r["payment_id"]) for r in rows) == sorted(
        [("payment", first["id"]), ("payment", second["id"]), ("refund", second["id"])]
    )
    assert sum(int(r["net"]) for r in rows) == made["net"]


@pytest.mark.parametrize("wallet", WALLETS)
async def test_every_kind_of_discrepancy_is_found_and_a_lost_notification_fixed(
    rr: Router, harnesses: Harnesses, control: Control, wallet: str
) -> None:
    h = harnesses[0][wallet]
    day_start = datetime.combine(today(), time(0), CHINA_TIME)
    ok = await paid(rr, h, 1_000)
    changed = await paid(rr, h, 2_000)
    moved = await paid(rr, h, 3_000)
    outside = await control(h, "outside_order", {"amount": 777})
    portal = await control(h, "portal_refund", {"order_no": held(h, ok["id"]), "amount": 100})
    # Paid on the channel just before midnight: yesterday's statement, not a discrepancy.
    await control(
        h,
        "paid_at",
        {
            "order_no": held(h, moved["id"]),
            "paid_at": (day_start - timedelta(seconds=1)).isoformat(),
        },
    )
    # The notification never arrives (and the re-query worker is stopped): pending here.
    await h.set_faults({"refund_delay_ms": 0, "drop_notifications": 100})
    status, lost = await rr.create(wallet=wallet, amount=4_000)
    assert status == 201
    from tests.recon.conftest import action_of

    await h.pay(action_of(lost))
    status, unpaid = await rr.create(wallet=wallet, amount=5_000)
    assert status == 201
    for ident in (ok["id"], changed["id"], moved["id"]):
        await recorded(rr, ident)
    await recorded(rr, lost["id"], "pending")
    await recorded(rr, unpaid["id"], "pending")
    # The record disagrees with the router and the channel: another amount; a payment it
    # calls succeeded that nobody paid.
    await sql(rr, "UPDATE payments SET amount = 2001 WHERE id = :id", id=changed["id"])
    await sql(
        rr,
        "UPDATE payments SET status = 'succeeded', paid_ms = :ms WHERE id = :id",
        id=unpaid["id"],
        ms=rr.clock.now_ms(),
    )

    report = await run(rr, wallet)

    found = {
        (d.kind, d.resolution, d.payment_id or d.channel_trade_no) for d in report.discrepancies
    }
    assert found == {
        ("missing_here", "needs_review", outside["channel_trade_no"]),
        ("missing_here", "needs_review", ok["id"]),
        ("amount_mismatch", "needs_review", changed["id"]),
        ("status_mismatch", "fixed", lost["id"]),
        ("missing_there", "needs_review", unpaid["id"]),
    }
    portal_line = next(d for d in report.discrepancies if d.theirs and d.theirs["refund_no"])
    assert portal_line.theirs is not None and portal_line.theirs["refund_no"] == portal["refund_no"]
    assert (report.lines, report.matched, report.fixed, report.needs_review) == (5, 1, 1, 4)
    assert report.neighbour_day == 1
    # The fix went through the router: Redis, then the record.
    assert (await rr.payment(lost["id"]))["status"] == "succeeded"
    await recorded(rr, lost["id"])

    before = await postings(rr)
    again = await run(rr, wallet)
    assert {
        (d.kind, d.resolution) for d in again.discrepancies if d.resolution == "needs_review"
    } == {(d.kind, d.resolution) for d in report.discrepancies if d.resolution == "needs_review"}
    # Fixed the first time, the line now simply matches; nothing is posted twice.
    assert (again.matched, again.fixed, again.needs_review) == (2, 0, 4)
    assert await postings(rr) == before
    async with rr.app[RECORD].engine.connect() as conn:
        row = (await conn.execute(select(recon_runs).where(recon_runs.c.id == again.run_id))).one()
        lines = (await conn.execute(select(func.count()).select_from(recon_lines))).scalar_one()
    assert (row.status, row.attempts, row.needs_review, lines) == ("done", 2, 4, 5)

    # What every router exports, from the record: the last run's discrepancies by kind.
    fresh = Metrics()
    await refresh_gauges(fresh, rr.app[RECORD].engine)
    account = f"{wallet}_main"
    gauge = "payrouter_recon_discrepancies"
    assert {
        kind: fresh.registry.get_sample_value(gauge, {"account": account, "kind": kind})
        for kind in ("missing_here", "missing_there", "amount_mismatch", "status_mismatch")
    } == {"missing_here": 2, "missing_there": 1, "amount_mismatch": 1, "status_mismatch": 0}
    last = fresh.registry.get_sample_value(
        "payrouter_recon_last_success_timestamp_seconds", {"account": account}
    )
    assert last is not None and abs(last - rr.clock.now()) < 60
    own = rr.app[RUNTIME].metrics.registry.get_sample_value
    assert own("payrouter_recon_lines_total", {"account": account, "result": "matched"}) == 3

    # Someone puts the record right: the next attempt matches the line and posts only what
    # changed, the fee of that one line (fees and coupons are posted per run and merchant).
    fees_before, count_before = await balance(rr, "fees"), await postings(rr)
    await sql(rr, "UPDATE payments SET amount = 2000 WHERE id = :id", id=changed["id"])
    third = await run(rr, wallet)
    assert (third.matched, third.needs_review) == (3, 3)
    async with rr.app[RECORD].engine.connect() as conn:
        fee = (
            await conn.execute(
                select(recon_lines.c.fee).where(recon_lines.c.payment_id == changed["id"])
            )
        ).scalar_one()
    assert fee != 0
    assert await balance(rr, "fees") == fees_before + fee
    assert await postings(rr) == count_before + 1


async def test_a_run_that_fails_keeps_the_previous_attempt(
    rr: Router, harnesses: Harnesses
) -> None:
    h = harnesses[0]["wechat"]
    payment = await paid(rr, h, 1_234)
    await recorded(rr, payment["id"])
    first = await run(rr, "wechat")
    assert (first.status, first.lines, first.matched) == ("done", 1, 1)

    await h.set_faults({"outage": True})
    failed = await run(rr, "wechat")
    assert failed.status == "failed" and failed.error
    async with rr.app[RECORD].engine.connect() as conn:
        row = (await conn.execute(select(recon_runs).where(recon_runs.c.id == first.run_id))).one()
        kept = (await conn.execute(select(recon_lines.c.order_no))).scalars().all()
    assert (row.status, row.attempts, row.lines, row.matched) == ("failed", 2, 1, 1)
    assert row.error == failed.error
    assert kept == [payment["id"]]
