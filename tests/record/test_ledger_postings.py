"""Postings for state changes: each money movement posted exactly once, whatever the number
and order of the calls, on both databases; two writers at once on PostgreSQL; the fee and
settlement postings; and `check_ledger` passing on what they wrote and failing when a
payment changes behind the ledger's back."""

from __future__ import annotations

import asyncio
import itertools
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from router.record import Record, open_record
from router.record.audit import check_ledger
from router.record.ledger import balances, totals
from router.record.postings import (
    capture_posting_id,
    post_channel_fee,
    post_merchant_discount,
    post_settlement,
    post_state_changes,
    refund_posting_id,
)
from router.record.schema import ledger_entries, ledger_postings
from tests.record.sample_rows import payment_row, payments, refund_row, refunds, set_amount, upsert

MCH = "mch_test0001"


async def count_postings(record: Record) -> int:
    async with record.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(ledger_postings)) or 0)


async def drain(
    record: Record, pays: list[dict[str, Any]], refs: list[dict[str, Any]] | None = None
) -> list[str]:
    """What the drainer does per batch: upsert the rows, then post, in one transaction."""
    refs = refs or []
    async with record.engine.begin() as conn:
        await upsert(conn, payments, pays)
        await upsert(conn, refunds, refs)
        return await post_state_changes(conn, pays, refs)


async def test_a_capture_and_a_refund_are_posted_once(migrated: Record) -> None:
    pay = payment_row(amount=1999)
    pending = payment_row(status="pending")
    ref = refund_row(pay, 500)
    failed = refund_row(pay, 100, status="failed")
    written = await drain(migrated, [pay, pending], [ref, failed])
    assert written == [capture_posting_id(pay["id"]), refund_posting_id(ref["id"])]
    # Again, and the refund alone (its payment read from the table): nothing new.
    assert await drain(migrated, [pay, pending], [ref, failed]) == []
    assert await drain(migrated, [], [ref]) == []
    async with migrated.engine.connect() as conn:
        assert await balances(conn) == {
            ("channel_clearing:wechat_main:CNY", "CNY"): 1999 - 500,
            (f"merchant_receivable:{MCH}:CNY", "CNY"): -1999,
            (f"refunds:{MCH}:CNY", "CNY"): 500,
        }
        report = await check_ledger(conn)
    assert report.ok, report.as_json()


async def test_a_refund_before_its_payment_succeeds_in_the_batch(migrated: Record) -> None:
    # Out of order: the refund's row comes in the batch with its payment's; the channel is
    # taken from the caller's payment row.
    pay = payment_row(channel="alipay_main")
    ref = refund_row(pay, 99)
    async with migrated.engine.begin() as conn:
        await upsert(conn, payments, [pay])
        await upsert(conn, refunds, [ref])
        await post_state_changes(conn, [], [ref])  # payment read from the table
        assert await post_state_changes(conn, [pay], [ref]) == [capture_posting_id(pay["id"])]
        assert (await balances(conn))[("channel_clearing:alipay_main:CNY", "CNY")] == 1999 - 99


async def test_an_earlier_version_after_the_success_changes_nothing(migrated: Record) -> None:
    pay = payment_row()
    await drain(migrated, [pay])
    older = pay | {"status": "pending", "version": 1, "paid_ms": None}
    assert await post_state_changes_in(migrated, [older]) == []
    assert await count_postings(migrated) == 1


async def post_state_changes_in(record: Record, pays: list[dict[str, Any]]) -> list[str]:
    async with record.engine.begin() as conn:
        return await post_state_changes(conn, pays, [])


async def test_a_failed_batch_posts_nothing_and_the_redrain_posts_once(migrated: Record) -> None:
    pay = payment_row()
    async with migrated.engine.connect() as conn:
        await conn.begin()
        await upsert(conn, payments, [pay])
        assert await post_state_changes(conn, [pay])
        await conn.rollback()  # the drainer crashed before its commit
    assert await count_postings(migrated) == 0
    assert await drain(migrated, [pay]) == [capture_posting_id(pay["id"])]
    assert await drain(migrated, [pay]) == []


async def test_fee_and_settlement_postings_have_fixed_ids(migrated: Record) -> None:
    pay = payment_row(amount=1999)
    ref = refund_row(pay, 500)
    await drain(migrated, [pay], [ref])
    async with migrated.engine.begin() as conn:
        assert await post_channel_fee(conn, pay["id"], "wechat_main", MCH, "CNY", 12, at_ms=1)
        assert not await post_channel_fee(conn, pay["id"], "wechat_main", MCH, "CNY", 12, at_ms=1)
        # A channel giving back part of its fee on the refund.
        assert await post_channel_fee(conn, ref["id"], "wechat_main", MCH, "CNY", -3, at_ms=2)
        assert not await post_channel_fee(
            conn, "pay_nofee000001", "wechat_main", MCH, "CNY", 0, at_ms=1
        )
        # A coupon of 100 the merchant funds, and its share (25) handed back on the refund.
        assert await post_merchant_discount(
            conn, pay["id"], "wechat_main", MCH, "CNY", 100, at_ms=1
        )
        assert not await post_merchant_discount(
            conn, pay["id"], "wechat_main", MCH, "CNY", 100, at_ms=1
        )
        assert await post_merchant_discount(
            conn, ref["id"], "wechat_main", MCH, "CNY", -25, at_ms=2
        )
        done = await post_settlement(
            conn,
            "stl_20261128_x",
            MCH,
            "CNY",
            gross=1999,
            refunded=500,
            fees=9,
            discounts=75,
            at_ms=3,
        )
        assert done
        assert not await post_settlement(
            conn, "stl_20261128_x", MCH, "CNY", gross=1999, refunded=500, fees=9, at_ms=3
        )
        assert not await post_settlement(
            conn, "stl_empty", MCH, "CNY", gross=0, refunded=0, fees=0, at_ms=3
        )
    async with migrated.engine.connect() as conn:
        got = await balances(conn)
        report = await check_ledger(conn)
        kinds = dict(
            (await conn.execute(select(ledger_postings.c.id, ledger_postings.c.kind))).all()
        )
    assert got[(f"settlement:{MCH}:CNY", "CNY")] == -(1999 - 500 - 9 - 75)
    assert got[("channel_clearing:wechat_main:CNY", "CNY")] == 1999 - 500 - 9 - 75
    for kind in ("merchant_receivable", "refunds", "fees", "discounts"):
        assert got[(f"{kind}:{MCH}:CNY", "CNY")] == 0
    assert kinds[f"fee_{pay['id']}"] == kinds[f"fee_{ref['id']}"] == "channel_fee"
    assert kinds[f"dsc_{pay['id']}"] == kinds[f"dsc_{ref['id']}"] == "merchant_discount"
    assert kinds["stl_stl_20261128_x"] == "settlement"
    assert report.ok, report.as_json()
    assert [(c.account, c.fees, c.discounts, c.clearing) for c in report.channels] == [
        ("wechat_main", 9, 75, 1999 - 500 - 9 - 75)
    ]


async def test_check_names_a_payment_changed_behind_the_ledger(migrated: Record) -> None:
    pay = payment_row(amount=1000)
    ref = refund_row(pay, 400)
    await drain(migrated, [pay, payment_row()], [ref])
    async with migrated.engine.begin() as conn:
        await set_amount(conn, pay["id"], 1001)
        report = await check_ledger(conn)
    assert not report.ok
    problems = [p for c in report.checks for p in c.problems]
    assert f"payment {pay['id']} is 1001 CNY but was posted as 1000" in problems
    assert any("succeeded payments total" in p for p in problems)
    assert any(p.startswith("channel_clearing:wechat_main:CNY") for p in problems)


@pytest.mark.postgres
async def test_two_drainers_posting_the_same_movement_at_once(postgres_migrated_url: str) -> None:
    first, second = (
        await open_record(postgres_migrated_url),
        await open_record(postgres_migrated_url),
    )
    try:
        pay = payment_row()
        async with first.engine.begin() as conn:
            await upsert(conn, payments, [pay])
        async with first.engine.connect() as one, second.engine.connect() as two:
            await one.begin()
            assert await post_state_changes(one, [pay]) == [capture_posting_id(pay["id"])]
            await two.begin()
            racing = asyncio.create_task(post_state_changes(two, [pay]))
            async with first.engine.connect() as watch:
                # The second writer is waiting on the first's lock (no event to await there).
                for _ in range(1000):
                    waiting = await watch.scalar(
                        text(
                            "SELECT count(*) FROM pg_locks "
                            "WHERE locktype = 'advisory' AND NOT granted"
                        )
                    )
                    if waiting:
                        break
                    await asyncio.sleep(0.01)
                assert waiting, "the second writer never waited for the first"
            await one.commit()
            assert await racing == []
            await two.commit()
        assert await count_postings(first) == 1
    finally:
        await first.close()
        await second.close()


CURRENCIES = ("CNY", "USD")
MERCHANTS = ("mch_a0000001", "mch_b0000002")
CHANNELS = ("wechat_main", "alipay_main")
_SETTLEMENTS = itertools.count(1)


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[dict[str, Any], list[tuple[int, str]], int]]:
    """Payments (any status), each with refunds (amount, status) within its amount and a
    channel fee."""
    out = []
    for _ in range(draw(st.integers(1, 6))):
        status = draw(st.sampled_from(["succeeded", "succeeded", "pending", "failed"]))
        pay = payment_row(
            draw(st.sampled_from(MERCHANTS)),
            amount=draw(st.integers(1, 10**9)),
            currency=draw(st.sampled_from(CURRENCIES)),
            channel=draw(st.sampled_from(CHANNELS)),
            status=status,
        )
        left, refs = pay["amount"], []
        if status == "succeeded":
            for _ in range(draw(st.integers(0, 3))):
                if left == 0:
                    break
                amount = draw(st.integers(1, left))
                ok = draw(st.sampled_from(["succeeded", "failed"]))
                left -= amount if ok == "succeeded" else 0
                refs.append((amount, ok))
        fee = draw(st.integers(0, 50)) if status == "succeeded" else 0
        out.append((pay, refs, fee))
    return out


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=histories(), seed=st.integers(0, 2**16), settle=st.booleans())
async def test_random_histories_post_each_movement_once_and_check(
    migrated: Record,
    history: list[tuple[dict[str, Any], list[tuple[int, str]], int]],
    seed: int,
    settle: bool,
) -> None:
    before = await count_postings(migrated)
    pays = [pay for pay, _, _ in history]
    refs = [refund_row(pay, amount, ok) for pay, rs, _ in history for amount, ok in rs]
    async with migrated.engine.begin() as conn:
        await upsert(conn, payments, pays)
        await upsert(conn, refunds, refs)
    # The same rows drained in random batches, each several times, in random order.
    shuffle = random.Random(seed)
    Batch = tuple[list[dict[str, Any]], list[dict[str, Any]]]
    calls: list[Batch] = (
        [([p], []) for p in pays] * 2 + [([], [r]) for r in refs] * 2 + [(pays, refs)]
    )
    shuffle.shuffle(calls)
    for pay_rows, ref_rows in calls:
        async with migrated.engine.begin() as conn:
            await post_state_changes(conn, pay_rows, ref_rows)
    extra = 0
    async with migrated.engine.begin() as conn:
        for pay, _, fee in history:
            extra += await post_channel_fee(
                conn, pay["id"], pay["channel"], pay["merchant_id"], pay["currency"], fee, at_ms=1
            )
        if settle:
            for mch, cur in {(p["merchant_id"], p["currency"]) for p in pays}:
                gross = sum(
                    p["amount"]
                    for p in pays
                    if p["status"] == "succeeded"
                    and (p["merchant_id"], p["currency"]) == (mch, cur)
                )
                back = sum(
                    r["amount"]
                    for r in refs
                    if r["status"] == "succeeded"
                    and (r["merchant_id"], r["currency"]) == (mch, cur)
                )
                fee_sum = sum(
                    f for p, _, f in history if (p["merchant_id"], p["currency"]) == (mch, cur)
                )
                extra += await post_settlement(
                    conn,
                    f"s{next(_SETTLEMENTS)}",
                    mch,
                    cur,
                    gross=gross,
                    refunded=back,
                    fees=fee_sum,
                    at_ms=2,
                )
    moved = sum(p["status"] == "succeeded" for p in pays) + sum(
        r["status"] == "succeeded" for r in refs
    )
    assert await count_postings(migrated) == before + moved + extra
    async with migrated.engine.connect() as conn:
        assert set((await totals(conn)).values()) <= {0}
        report = await check_ledger(conn)
        assert report.ok, report.as_json()
        entries = await conn.scalar(select(func.count()).select_from(ledger_entries))
        assert entries
    victim = next((p for p in pays if p["status"] == "succeeded"), None)
    if victim is not None:
        # Behind the ledger's back, then put back: the check sees it, then passes again.
        async with migrated.engine.begin() as conn:
            await set_amount(conn, victim["id"], victim["amount"] + 1)
            broken = await check_ledger(conn)
            await set_amount(conn, victim["id"], victim["amount"])
        assert not broken.ok
        assert any(victim["id"] in p for c in broken.checks for p in c.problems)
