"""A reconciled day written straight into the record, standing in for `payrouter recon run`:
the payments and refunds the lines name (and their ledger postings, as the drainer and
reconciliation make them), one `recon_runs` row per account and its `recon_lines`."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from router.record.postings import post_channel_fee, post_merchant_discount, post_state_changes
from router.record.schema import recon_lines, recon_runs
from tests.record.sample_rows import payment_row, payments, refund_row, refunds, upsert

DAY = "2026-11-28"
BOOKED_MS = 1_764_259_200_000  # 2026-11-28 00:00 China time

_TRADE = itertools.count(1)


@dataclass
class Line:
    """One statement line as reconciliation leaves it."""

    kind: str
    merchant: str
    amount: int
    settled: int
    fee: int
    currency: str = "CNY"
    result: str = "matched"
    livemode: bool = False
    of: Line | None = None
    """A refund's payment line."""
    payment: dict[str, Any] = field(default_factory=dict)
    refund: dict[str, Any] | None = None


@dataclass
class Run:
    account: str
    status: str = "done"
    lines: list[Line] = field(default_factory=list)

    def pay(self, merchant: str, amount: int, *, coupon: int = 0, fee: int = 0, **kw: Any) -> Line:
        line = Line("payment", merchant, amount, amount - coupon, fee, **kw)
        self.lines.append(line)
        return line

    def refund(self, of: Line, amount: int, *, coupon: int = 0, fee: int = 0, **kw: Any) -> Line:
        kw.setdefault("currency", of.currency)
        kw.setdefault("livemode", of.livemode)
        line = Line("refund", of.merchant, amount, amount - coupon, fee, of=of, **kw)
        self.lines.append(line)
        return line


async def write_day(conn: AsyncConnection, day: str, runs: list[Run]) -> None:
    """Write every run of `day` with its lines, their payments and refunds, and the postings
    of what they captured, refunded, charged and discounted."""
    for run in runs:
        for line in run.lines:
            if line.kind == "payment":
                row = payment_row(
                    line.merchant,
                    amount=line.amount,
                    currency=line.currency,
                    channel=run.account,
                    created_ms=BOOKED_MS,
                )
                row["livemode"] = line.livemode
                row["channel_trade_no"] = f"4200{next(_TRADE):016d}"
                line.payment = row
            else:
                assert line.of is not None
                line.payment = line.of.payment
                line.refund = refund_row(line.payment, line.amount)
                line.refund["livemode"] = line.livemode
        pays = [ln.payment for ln in run.lines if ln.kind == "payment"]
        refs = [ln.refund for ln in run.lines if ln.refund is not None]
        await upsert(conn, payments, pays)
        await upsert(conn, refunds, refs)
        await post_state_changes(conn, pays, refs)
        run_id = f"rcn_{day.replace('-', '')}_{run.account}"
        await conn.execute(
            insert(recon_runs),
            [
                {
                    "id": run_id,
                    "day": day,
                    "account": run.account,
                    "wallet": "wechat",
                    "status": run.status,
                    "started_ms": BOOKED_MS,
                    "lines": len(run.lines),
                    "needs_review": sum(1 for ln in run.lines if ln.result == "needs_review"),
                }
            ],
        )
        for seq, line in enumerate(run.lines, 1):
            await _line(conn, run, run_id, seq, line)


async def _line(conn: AsyncConnection, run: Run, run_id: str, seq: int, line: Line) -> None:
    object_id = line.refund["id"] if line.refund else line.payment["id"]
    await conn.execute(
        insert(recon_lines),
        [
            {
                "run_id": run_id,
                "seq": seq,
                "kind": line.kind,
                "merchant_id": line.merchant,
                "livemode": line.livemode,
                "payment_id": line.payment["id"],
                "refund_id": line.refund["id"] if line.refund else None,
                "order_no": line.payment["id"],
                "refund_no": line.refund["id"] if line.refund else None,
                "channel_trade_no": line.payment["channel_trade_no"],
                "amount": line.amount,
                "settled": line.settled,
                "fee": line.fee,
                "currency": line.currency,
                "booked_ms": BOOKED_MS + seq * 1000,
                "result": line.result,
            }
        ],
    )
    if line.result == "needs_review":
        return
    sign = 1 if line.kind == "payment" else -1
    at = BOOKED_MS + seq * 1000
    args = (object_id, run.account, line.merchant, line.currency)
    await post_channel_fee(conn, *args, line.fee, at_ms=at)
    await post_merchant_discount(conn, *args, sign * (line.amount - line.settled), at_ms=at)
