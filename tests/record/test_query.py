"""Lists from the record on both databases: every payment filter, cursor pagination that
neither repeats nor skips (rows created in the same millisecond included), refunds of a
payment and of a merchant, events by type, and a cursor that is not the merchant's."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from router.record import Record
from router.record.query import (
    CursorNotFound,
    PaymentFilter,
    list_events,
    list_payments,
    list_refunds,
)
from router.record.schema import events
from tests.record.sample_rows import payment_row, payments, refund_row, refunds, upsert

MCH, OTHER = "mch_query00001", "mch_query00002"
T0 = 1_780_000_000_000


def table_rows() -> list[dict[str, Any]]:
    """60 payments of MCH, many sharing a millisecond, with varied fields; a few of OTHER."""
    draws = random.Random(5)
    rows = []
    for n in range(60):
        wallet, channel = draws.choice(
            [("wechat", "wechat_main"), ("alipay", "alipay_main"), ("unionpay", "unionpay_main")]
        )
        rows.append(
            payment_row(
                MCH,
                amount=draws.choice([100, 1999, 5000, 12000, 99999]),
                status=draws.choice(["succeeded", "pending", "failed", "closed"]),
                method=draws.choice(["qr", "h5", "app"]),
                wallet=wallet,
                channel=channel,
                created_ms=T0 + n // 4,  # four payments per millisecond
                order=f"ord-{n % 7}",
            )
        )
    rows += [payment_row(OTHER, created_ms=T0 + n) for n in range(5)]
    return rows


@pytest.fixture
async def filled(migrated: Record) -> list[dict[str, Any]]:
    rows = table_rows()
    async with migrated.engine.begin() as conn:
        await upsert(conn, payments, rows)
    return rows


def newest_first(rows: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in sorted(rows, key=lambda r: (r["created_ms"], r["id"]), reverse=True)]


async def walk(record: Record, filters: PaymentFilter, limit: int) -> list[str]:
    """Every page of a list, following the cursor to the end."""
    seen: list[str] = []
    after = None
    async with record.engine.connect() as conn:
        for _ in range(1000):
            page = await list_payments(conn, MCH, filters, limit=limit, starting_after=after)
            seen += [r["id"] for r in page.rows]
            if not page.has_more:
                return seen
            after = page.last_id
    raise AssertionError("the pages never ended")


FILTERS = [
    PaymentFilter(),
    PaymentFilter(status="succeeded"),
    PaymentFilter(method="h5"),
    PaymentFilter(wallet="alipay"),
    PaymentFilter(channel="unionpay_main"),
    PaymentFilter(merchant_order_id="ord-3"),
    PaymentFilter(created_gte_ms=T0 + 3, created_lt_ms=T0 + 9),
    PaymentFilter(amount_gte=1999, amount_lte=12000),
    PaymentFilter(status="pending", amount_gte=5000),
    PaymentFilter(status="failed", method="qr", amount_lte=12000),
]


def matching(rows: list[dict[str, Any]], filters: PaymentFilter) -> list[dict[str, Any]]:
    """What `filters` should select from `rows`, worked out in Python."""
    return [
        r
        for r in rows
        if r["merchant_id"] == MCH
        and all(
            getattr(filters, name) in (None, r[name])
            for name in ("status", "method", "wallet", "channel", "merchant_order_id")
        )
        and (filters.created_gte_ms is None or r["created_ms"] >= filters.created_gte_ms)
        and (filters.created_lt_ms is None or r["created_ms"] < filters.created_lt_ms)
        and (filters.amount_gte is None or r["amount"] >= filters.amount_gte)
        and (filters.amount_lte is None or r["amount"] <= filters.amount_lte)
    ]


async def test_every_filter_pages_through_exactly_its_rows(
    migrated: Record, filled: list[dict[str, Any]]
) -> None:
    # One database for every filter and page size: setting one up is the slow part.
    for filters in FILTERS:
        wanted = newest_first(matching(filled, filters))
        assert wanted, f"{filters} matches something"
        for limit in (1, 3, 7, 100):
            assert await walk(migrated, filters, limit) == wanted, (filters, limit)


async def test_a_page_is_rows_by_column_name(
    migrated: Record, filled: list[dict[str, Any]]
) -> None:
    async with migrated.engine.connect() as conn:
        page = await list_payments(conn, MCH, limit=2)
    assert page.has_more
    newest = max(
        (r for r in filled if r["merchant_id"] == MCH), key=lambda r: (r["created_ms"], r["id"])
    )
    assert page.rows[0] == newest


async def test_a_cursor_from_another_merchant_is_refused(
    migrated: Record, filled: list[dict[str, Any]]
) -> None:
    theirs = next(r["id"] for r in filled if r["merchant_id"] == OTHER)
    async with migrated.engine.connect() as conn:
        with pytest.raises(CursorNotFound, match="starting_after"):
            await list_payments(conn, MCH, starting_after=theirs)
        with pytest.raises(ValueError, match="limit"):
            await list_payments(conn, MCH, limit=0)


async def test_refunds_of_a_payment_and_of_a_merchant(migrated: Record) -> None:
    first, second = payment_row(MCH, amount=10_000), payment_row(MCH, amount=10_000)
    made = [refund_row(first, 100 + n) for n in range(5)] + [refund_row(second, 7)]
    for n, row in enumerate(made):
        row["created_ms"] = T0 + n // 2
    async with migrated.engine.begin() as conn:
        await upsert(conn, payments, [first, second])
        await upsert(conn, refunds, made)
    async with migrated.engine.connect() as conn:
        page = await list_refunds(conn, MCH, payment_id=first["id"], limit=3)
        rest = await list_refunds(
            conn, MCH, payment_id=first["id"], limit=3, starting_after=page.last_id
        )
        every = await list_refunds(conn, MCH, limit=10)
        with pytest.raises(CursorNotFound):
            await list_refunds(conn, MCH, payment_id=second["id"], starting_after=made[0]["id"])
    assert (page.has_more, rest.has_more) == (True, False)
    assert [r["id"] for r in page.rows + rest.rows] == newest_first(made[:5])
    assert [r["id"] for r in every.rows] == newest_first(made)


async def test_events_by_type(migrated: Record) -> None:
    kinds = itertools.cycle(["payment.succeeded", "payment.failed", "refund.succeeded"])
    rows = [
        {
            "id": f"evt_{n:020d}",
            "merchant_id": MCH,
            "version": 1,
            "type": next(kinds),
            "payment_id": None,
            "data": {"n": n},
            "state": "delivered",
            "attempt_count": 1,
            "created_ms": T0 + n // 3,
            "updated_ms": T0 + n,
        }
        for n in range(12)
    ]
    async with migrated.engine.begin() as conn:
        await upsert(conn, events, rows)
    async with migrated.engine.connect() as conn:
        failed = await list_events(conn, MCH, type_="payment.failed", limit=2)
        more = await list_events(
            conn, MCH, type_="payment.failed", limit=10, starting_after=failed.last_id
        )
        none = await list_events(conn, OTHER)
    wanted = newest_first([r for r in rows if r["type"] == "payment.failed"])
    assert [r["id"] for r in failed.rows + more.rows] == wanted
    assert failed.rows[0]["data"] == next(r["data"] for r in rows if r["id"] == wanted[0])
    assert (none.rows, none.has_more) == ([], False)
