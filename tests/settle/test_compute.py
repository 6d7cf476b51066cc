"""Settlement arithmetic as a property: for any reconciled lines, per merchant, currency and
mode, net = gross − refunds − discounts − fees, the lines sum to the figures, counts are
right, and nothing is ever a float."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from router.settle import Key, settle

MERCHANTS = st.sampled_from(["mch_propertyaa", "mch_propertybb"])
CURRENCIES = st.sampled_from(["CNY", "USD", "JPY"])


@st.composite
def lines(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["payment", "refund"]))
    amount = draw(st.integers(1, 10**12))
    coupon = draw(st.integers(0, amount))
    fee = draw(st.integers(0, amount // 100 + 1))
    return {
        "kind": kind,
        "merchant_id": draw(MERCHANTS),
        "currency": draw(CURRENCIES),
        "livemode": draw(st.booleans()),
        "payment_id": "pay_x",
        "refund_id": "re_x" if kind == "refund" else None,
        "merchant_order_id": "o",
        "account": "wechat_main",
        "channel_trade_no": "t",
        "amount": amount,
        "settled": amount - coupon,
        "fee": -fee if kind == "refund" else fee,
        "booked_ms": 0,
    }


@settings(max_examples=200, deadline=None)
@given(st.lists(lines(), max_size=40))
def test_figures_add_up_per_merchant_and_currency(day: list[dict[str, Any]]) -> None:
    found = settle(day)
    assert sum(len(t.lines) for t in found.values()) == len(day)
    kinds = Counter(
        (Key(ln["merchant_id"], ln["currency"], ln["livemode"]), ln["kind"]) for ln in day
    )
    for key, totals in found.items():
        mine = [ln for ln in day if Key(ln["merchant_id"], ln["currency"], ln["livemode"]) == key]
        pays = [ln for ln in mine if ln["kind"] == "payment"]
        refs = [ln for ln in mine if ln["kind"] == "refund"]
        assert totals.gross == sum(ln["amount"] for ln in pays)
        assert totals.refunds == sum(ln["amount"] for ln in refs)
        assert totals.discounts == sum(ln["amount"] - ln["settled"] for ln in pays) - sum(
            ln["amount"] - ln["settled"] for ln in refs
        )
        assert totals.fees == sum(ln["fee"] for ln in mine)
        assert totals.net == totals.gross - totals.refunds - totals.discounts - totals.fees
        # What the channels paid less their fees is what the merchant gets.
        assert (
            totals.net
            == sum(ln["settled"] for ln in pays) - sum(ln["settled"] for ln in refs) - totals.fees
        )
        assert (totals.payment_count, totals.refund_count) == (
            kinds[(key, "payment")],
            kinds[(key, "refund")],
        )
        assert sum(ln["net"] for ln in totals.lines) == totals.net
        assert sum(ln["discount"] for ln in totals.lines) == totals.discounts
        figures = (totals.gross, totals.refunds, totals.discounts, totals.fees, totals.net)
        assert all(type(v) is int for v in figures)
        assert all(type(ln[k]) is int for ln in totals.lines for k in ("amount", "fee", "net"))
