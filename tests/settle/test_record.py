"""The settlement rows in the record, on both databases: lines are read back in order a
chunk at a time (the CSV streams them so), and a settlement is written once."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.clock import FrozenClock
from router.record import Record
from router.record import settlements as rows
from router.settle import Key, settle, settle_day
from tests.settle.days import DAY, Run, write_day


async def test_lines_come_in_chunks_and_a_day_is_written_once(migrated: Record) -> None:
    run = Run("wechat_main")
    for n in range(7):
        run.pay("mch_chunkedshop1", 100 + n, fee=1)
    async with migrated.engine.begin() as conn:
        await write_day(conn, DAY, [run])
    clock = FrozenClock()
    (made,) = (await settle_day(migrated, DAY, clock)).settlements

    async with rows.reading(migrated) as conn:
        chunks = [chunk async for chunk in rows.all_lines(conn, made["id"], chunk=3)]
        row = await rows.find(conn, "mch_chunkedshop1", DAY, "CNY", False)
    assert [len(c) for c in chunks] == [3, 3, 1]
    assert [line["number"] for c in chunks for line in c] == list(range(1, 8))
    assert [line["amount"] for c in chunks for line in c] == [100 + n for n in range(7)]
    assert row is not None and row["id"] == made["id"]

    async with migrated.engine.begin() as conn:
        # A second writer that missed the first one's settlement: refused, nothing written.
        assert not await rows.write(conn, row | {"id": "stl_secondwriter01"})
    async with rows.reading(migrated) as conn:
        assert [r["id"] for r in await rows.of_day(conn, DAY)] == [made["id"]]


EXAMPLES = itertools.count()


@st.composite
def days(draw: st.DrawFn) -> list[tuple[str, str, int, int, int, int | None]]:
    """Lines of a day: (merchant, currency, amount, coupon, fee, refunded line or None)."""
    out: list[tuple[str, str, int, int, int, int | None]] = []
    for _ in range(draw(st.integers(1, 12))):
        amount = draw(st.integers(1, 10**9))
        coupon = draw(st.integers(0, amount))
        fee = draw(st.integers(0, amount // 100 + 1))
        payments = [i for i, line in enumerate(out) if line[5] is None]
        of = draw(st.sampled_from([None, *payments])) if payments else None
        if of is not None:
            merchant, currency = out[of][0], out[of][1]
            fee = -fee
        else:
            merchant = draw(st.sampled_from(["mch_sqlpropaaa1", "mch_sqlpropbbb1"]))
            currency = draw(st.sampled_from(["CNY", "USD"]))
        out.append((merchant, currency, amount, coupon, fee, of))
    return out


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(day=days())
async def test_the_database_sums_what_the_arithmetic_says(
    migrated: Record, day: list[tuple[str, str, int, int, int, int | None]]
) -> None:
    """The record sums a day's lines in SQL (nothing per line passes through the process):
    its settlements are `router.settle.compute`'s figures, and their copied lines sum to
    them."""
    # Each example its own day (hypothesis replays examples on the same database).
    number = next(EXAMPLES)
    when = (date(2031, 1, 1) + timedelta(days=number)).isoformat()
    run, made = Run("wechat_main"), []
    for merchant, currency, amount, coupon, fee, of in day:
        if of is None:
            made.append(run.pay(merchant, amount, coupon=coupon, fee=fee, currency=currency))
        else:
            made.append(run.refund(made[of], amount, coupon=coupon, fee=fee))
    async with migrated.engine.begin() as conn:
        await write_day(conn, when, [run])
    reference = settle(
        {
            "kind": line.kind,
            "merchant_id": line.merchant,
            "currency": line.currency,
            "livemode": line.livemode,
            "payment_id": "",
            "refund_id": None,
            "merchant_order_id": "",
            "account": "",
            "channel_trade_no": "",
            "amount": line.amount,
            "settled": line.settled,
            "fee": line.fee,
            "booked_ms": 0,
        }
        for line in run.lines
    )
    outcome = await settle_day(migrated, when, FrozenClock())
    found = {Key(s["merchant_id"], s["currency"], s["livemode"]): s for s in outcome.settlements}
    assert found.keys() == reference.keys()
    for key, totals in reference.items():
        got = found[key]
        assert (got["gross"], got["refunds"], got["discounts"], got["fees"], got["net"]) == (
            totals.gross,
            totals.refunds,
            totals.discounts,
            totals.fees,
            totals.net,
        )
        assert (got["payment_count"], got["refund_count"]) == (
            totals.payment_count,
            totals.refund_count,
        )
        async with rows.reading(migrated) as conn:
            copied = [line async for chunk in rows.all_lines(conn, got["id"]) for line in chunk]
        assert sum(line["net"] for line in copied) == totals.net
        assert sum(line["discount"] for line in copied) == totals.discounts
        assert [line["number"] for line in copied] == list(range(1, len(copied) + 1))
