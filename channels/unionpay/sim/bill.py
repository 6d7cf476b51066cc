"""The UnionPay simulator's settlement file of the day ("对账文件"), simplified.

UnionPay's merchant files are fixed-width text, one line per settled transaction. This one
keeps that shape with the columns a merchant reconciles on, space-separated and padded:

    txnCode traceNo traceTime queryId merId orderId txnTime txnAmt origQryId

`txnCode` is `S22` for a consume, `S30` for a refund and `S31` for a void; amounts are
12-digit zero-padded fen. The last line totals the day: `TOTAL <count> <net fen>`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from channels.unionpay.protocol import wire
from channels.unionpay.sim.orders import Txn

TXN_CODES = {"01": "S22", "04": "S30", "31": "S31"}
_WIDTHS = (3, 6, 10, 21, 15, 40, 14, 12, 21)


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


def statement(txns: Iterable[Txn], mer_id: str, day: date) -> str:
    """The day's file for `mer_id` (Beijing date): possibly just the total line."""
    lines = []
    count = net = 0
    rows = [t for t in txns if t.mer_id == mer_id and _settled_on(t, day)]
    for txn in rows:
        assert txn.amount is not None
        sign = 1 if txn.txn_type == "01" else -1
        count += 1
        net += sign * txn.amount
        cells = (
            TXN_CODES.get(txn.txn_type, "S00"),
            txn.trace_no or "000000",
            txn.trace_time or txn.txn_time[4:],
            txn.query_id,
            txn.mer_id,
            txn.order_id,
            txn.txn_time,
            f"{txn.amount:012d}",
            txn.original.query_id if txn.original is not None else "",
        )
        lines.append(
            " ".join(cell.ljust(width) for cell, width in zip(cells, _WIDTHS, strict=True))
        )
    lines.append(f"TOTAL {count} {net}")
    return "\r\n".join(line.rstrip() for line in lines) + "\r\n"
