"""A day's settlement figures from its reconciled lines: pure arithmetic, integers only.

Per merchant, currency and mode (a `Key`):

- gross = Σ amount of payment lines, refunds = Σ amount of refund lines;
- discounts = Σ (amount − settled) of payments − Σ (amount − settled) of refunds: a coupon
  the merchant funds made the channel collect that much less, and a refund hands the
  coupon's share back;
- fees = Σ fee (a refund's fee is negative: the channel gives it back);
- net = gross − refunds − discounts − fees, negative when refunds exceed the day's payments
  (the merchant owes that much).

Each line keeps its own signed share (`discount`, `fee`, `net`), so the lines of a
settlement sum to its figures.

`settle run` has the record compute the same in SQL (`router.record.settlements.day_totals`,
and the lines copied by one INSERT ... SELECT), so a day of any size passes through the
process as a few sums; `tests/settle/test_record.py` holds the two equal on random days.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class Key(NamedTuple):
    """What one settlement covers on its day."""

    merchant_id: str
    currency: str
    livemode: bool


@dataclass
class Totals:
    """One settlement's figures, and its lines as `settlement_lines` rows (no id, number)."""

    gross: int = 0
    refunds: int = 0
    discounts: int = 0
    fees: int = 0
    payment_count: int = 0
    refund_count: int = 0
    lines: list[dict[str, Any]] = field(default_factory=list)

    @property
    def net(self) -> int:
        return self.gross - self.refunds - self.discounts - self.fees

    def add(self, line: Mapping[str, Any]) -> None:
        """Count one reconciled line (`recon_lines` columns, its run's `account` and its
        payment's `merchant_order_id`)."""
        amount, settled, fee = int(line["amount"]), int(line["settled"]), int(line["fee"])
        coupon = amount - settled
        if line["kind"] == "payment":
            self.gross += amount
            self.payment_count += 1
            discount, net = coupon, amount - coupon - fee
        else:
            self.refunds += amount
            self.refund_count += 1
            discount, net = -coupon, -amount + coupon - fee
        self.discounts += discount
        self.fees += fee
        self.lines.append(
            {
                "kind": line["kind"],
                "payment_id": line["payment_id"],
                "refund_id": line["refund_id"],
                "merchant_order_id": line["merchant_order_id"],
                "account": line["account"],
                "channel_trade_no": line["channel_trade_no"],
                "amount": amount,
                "discount": discount,
                "fee": fee,
                "net": net,
                "booked_ms": int(line["booked_ms"]),
            }
        )


def settle(lines: Iterable[Mapping[str, Any]]) -> dict[Key, Totals]:
    """The figures of every merchant, currency and mode the lines name, sorted by key."""
    out: dict[Key, Totals] = {}
    for line in lines:
        key = Key(line["merchant_id"], line["currency"], bool(line["livemode"]))
        out.setdefault(key, Totals()).add(line)
    return dict(sorted(out.items()))
