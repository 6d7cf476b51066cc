"""The UnionPay simulator's settlement file of the day ("对账文件"), simplified.

UnionPay's merchant files are fixed-width text, one line per settled transaction. This one
keeps that shape with the columns a merchant reconciles on, each padded to its width and
separated by one space (docs/reconciliation.md draws it):

    txnCode traceNo traceTime queryId merId orderId txnTime txnAmt settleAmt discount fee
    origQryId origOrderId

`txnCode` is `S22` for a consume, `S30` for a refund and `S31` for a void; amounts are
12-digit zero-padded fen; `fee` is `D` (charged) or `C` (given back) and 12 digits; a
merchant-funded coupon (`discount`) lowers `settleAmt`. The last line totals the day:
`TOTAL <count> <net txnAmt> <net settleAmt> <net fee>` (net: consumes less refunds and voids).
`/sim/statements/{YYYYMMDD}` serves it as text; the file transfer (`txnType` 76) zips it.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date

from channels.sim.statements import Knobs, fee
from channels.unionpay.protocol import wire
from channels.unionpay.sim.orders import Txn

TXN_CODES = {"01": "S22", "04": "S30", "31": "S31"}
WIDTHS = (3, 6, 10, 21, 15, 40, 14, 12, 12, 12, 13, 21, 40)


def _settled_on(txn: Txn, day: date) -> bool:
    """Money moved that day: a payment (even if voided later), a refund, a void of a payment."""
    if txn.kind == "void":
        moved = txn.original is not None and txn.original.paid_at is not None
        moment = txn.created_at if moved else None
    else:
        moment = txn.paid_at
    if moment is None or txn.amount is None:
        return False
    return moment.astimezone(wire.BEIJING).date() == day


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the file, whatever made it (a transaction, a generator)."""

    txn_code: str
    trace_no: str
    trace_time: str
    query_id: str
    mer_id: str
    order_id: str
    txn_time: str
    amount: int
    discount: int
    rate_bp: int
    orig_query_id: str = ""
    orig_order_id: str = ""

    @property
    def consume(self) -> bool:
        return self.txn_code == "S22"

    @property
    def settled(self) -> int:
        return self.amount - self.discount

    @property
    def fee(self) -> int:
        charged = fee(self.settled, self.rate_bp)
        return charged if self.consume else -charged

    def text(self) -> str:
        fee_cell = ("D" if self.fee >= 0 else "C") + f"{abs(self.fee):012d}"
        cells = (
            self.txn_code,
            self.trace_no,
            self.trace_time,
            self.query_id,
            self.mer_id,
            self.order_id,
            self.txn_time,
            f"{self.amount:012d}",
            f"{self.settled:012d}",
            f"{self.discount:012d}",
            fee_cell,
            self.orig_query_id,
            self.orig_order_id,
        )
        line = " ".join(cell.ljust(width) for cell, width in zip(cells, WIDTHS, strict=True))
        return line.rstrip()


def rows(txns: Iterable[Txn], knobs: Knobs, mer_id: str, day: date) -> list[Row]:
    """The day's settled transactions of `mer_id` (Beijing date), in time order."""
    found = [t for t in txns if t.mer_id == mer_id and _settled_on(t, day)]
    rate = knobs.rate_bp(mer_id)
    out: list[Row] = []
    for txn in found:
        assert txn.amount is not None
        original = txn.original
        payment = original if original is not None else txn
        coupon = knobs.coupon(mer_id, payment.order_id)
        # A refund gives back the coupon's share of what it refunds.
        share = coupon if txn is payment else coupon * txn.amount // (payment.amount or 1)
        out.append(
            Row(
                txn_code=TXN_CODES.get(txn.txn_type, "S00"),
                trace_no=txn.trace_no or "000000",
                trace_time=txn.trace_time or txn.txn_time[4:],
                query_id=txn.query_id,
                mer_id=txn.mer_id,
                order_id=txn.order_id,
                txn_time=txn.txn_time,
                amount=txn.amount,
                discount=share,
                rate_bp=rate,
                orig_query_id=original.query_id if original is not None else "",
                orig_order_id=original.order_id if original is not None else "",
            )
        )
    return sorted(out, key=lambda row: row.trace_time)


def render(found: Iterable[Row]) -> Iterator[str]:
    """The file's lines (no line ends): the rows, then the TOTAL line."""
    count = net = settled = fees = 0
    for row in found:
        sign = 1 if row.consume else -1
        count += 1
        net += sign * row.amount
        settled += sign * row.settled
        fees += row.fee
        yield row.text()
    yield f"TOTAL {count} {net} {settled} {fees}"


def statement(txns: Iterable[Txn], knobs: Knobs, mer_id: str, day: date) -> str:
    """The day's file for `mer_id` (Beijing date): possibly just the total line."""
    return "\r\n".join(render(rows(txns, knobs, mer_id, day))) + "\r\n"


def member_name(mer_id: str, day: date) -> str:
    """The file's name inside the zip, in UnionPay's style (`INN<yymmdd>88ZM_<merId>`)."""
    return f"INN{day:%y%m%d}88ZM_{mer_id}"


def archive(text: str, mer_id: str, day: date) -> bytes:
    """The zip the file transfer sends (before it deflates and base64s it)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr(member_name(mer_id, day), text.encode("utf-8"))
    return buffer.getvalue()
