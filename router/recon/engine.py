"""Reconcile one channel account's statement of one day against the record.

The statement streams (`Channel.statement`); every `BATCH` lines the record's payments and
refunds they name are read in one query each, each line is classified, the batch's lines are
written in bulk and the fees and coupons of the lines that agree are posted (once-only by
id, so a re-run posts nothing twice). Then the record's side: its succeeded payments and
refunds of the day that no line named, found by an anti-join against the run's lines.

A line whose record is not final yet (a lost notification) is asked about at the channel
through the payment service (`Fixer`): Redis, the merchant's webhook and then the record all
move, and the line is `fixed`. docs/reconciliation.md "Matching" has the rules.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol

from channels.base import Channel, StatementLine
from channels.errors import ChannelError
from channels.statement import CHINA_TIME
from router.clock import Clock
from router.domain_errors import ChannelProblem, TradeMismatch
from router.recon.report import (
    Discrepancy,
    RunReport,
    add_totals,
    discrepancy_row,
    ours,
    payment_id,
    theirs,
)
from router.record import recon as sql

log = logging.getLogger("payrouter.recon")
BATCH = 1000
"""Lines per lookup and bulk insert."""


class Fixer(Protocol):
    """What reconciliation asks the payment service (`router.recon.fix.ServiceFixer`)."""

    async def payment(self, merchant: str, pay_id: str) -> str | None:
        """Ask the channel about the payment, apply its answer; the status now."""
        ...

    async def refund(self, merchant: str, re_id: str) -> str | None:
        """Ask the channel about the refund, apply its answer; the status now."""
        ...

    async def paid_ms(self, row: dict[str, Any]) -> int | None:
        """When the channel says the recorded payment `row` was paid (epoch ms)."""
        ...


def day_bounds(day: date) -> tuple[int, int]:
    """The statement day in China time as [start, end) epoch milliseconds."""
    start = datetime.combine(day, time(0), CHINA_TIME)
    return int(start.timestamp() * 1000), int((start + timedelta(days=1)).timestamp() * 1000)


class Reconciler:
    """Runs reconciliation for one account and day into the record (`engine`: the record's
    SQLAlchemy engine, typed loosely since only `router.record` speaks SQL)."""

    def __init__(
        self,
        engine: Any,
        channel: Channel,
        wallet: str,
        fixer: Fixer,
        clock: Clock,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.engine = engine
        self.channel = channel
        self.account = channel.account
        self.wallet = wallet
        self.fixer = fixer
        self.clock = clock
        self.progress = progress

    async def run(self, day: date) -> RunReport:
        """Reconcile `day`; a failure (a statement that does not verify, a channel or record
        that does not answer) is a `failed` report whose `error` says why."""
        day_s = day.isoformat()
        rid = sql.run_id(day_s, self.account)
        report = RunReport(rid, day_s, self.account)
        report.attempts = await sql.begin_attempt(
            self.engine, rid, day_s, self.account, self.wallet, self.clock.now_ms()
        )
        try:
            async with self.engine.begin() as conn:
                await sql.replace_attempt(conn, rid)
                sums: dict[tuple[str, str], list[int]] = {}
                await self._statement(conn, sums, day, report)
                report.postings = await sql.post_run_totals(
                    conn, rid, self.account, report.attempts, sums, self.clock.now_ms()
                )
                await self._record_side(conn, day, report)
                rows = [
                    {"run_id": rid, "number": n, **discrepancy_row(d)}
                    for n, d in enumerate(report.discrepancies, 1)
                ]
                await sql.write_discrepancies(conn, rows)
                report.status = "done"
                await sql.finish_attempt(
                    conn,
                    rid,
                    lines=report.lines,
                    matched=report.matched,
                    fixed=report.fixed,
                    needs_review=report.needs_review,
                    totals={"currencies": report.totals, "neighbour_day": report.neighbour_day},
                    now_ms=self.clock.now_ms(),
                )
        except ChannelError as exc:
            return await self._failed(report, f"{exc.code or type(exc).__name__}: {exc.message}")
        except Exception as exc:
            # The record failing mid-run, or a bug: the run says so rather than a traceback
            # (the previous attempt's rows are intact: the transaction rolled back).
            log.exception("reconciliation of %s %s failed", self.account, day_s)
            return await self._failed(report, f"{type(exc).__name__}: {exc}")
        return report

    async def _failed(self, report: RunReport, error: str) -> RunReport:
        report.status, report.error = "failed", error
        await sql.fail_attempt(self.engine, report.run_id, error, self.clock.now_ms())
        return report

    async def _statement(
        self, conn: Any, sums: dict[tuple[str, str], list[int]], day: date, report: RunReport
    ) -> None:
        """Read, match and write the statement's lines; add each reconciled line's fee and
        coupon to `sums` (per merchant and currency: [fee, discount])."""
        batch: list[StatementLine] = []
        async for line in self.channel.statement(day):
            batch.append(line)
            if len(batch) >= BATCH:
                await self._batch(conn, sums, batch, report)
                batch = []
        if batch:
            await self._batch(conn, sums, batch, report)

    async def _batch(
        self,
        conn: Any,
        sums: dict[tuple[str, str], list[int]],
        batch: list[StatementLine],
        report: RunReport,
    ) -> None:
        pays, refs = await sql.lookup(
            conn,
            # A refund's payment too: a refund the record lacks still names whose it is.
            [ln.order_no for ln in batch],
            [ln.refund_no for ln in batch if ln.kind == "refund" and ln.refund_no],
        )
        rows: list[dict[str, Any]] = []
        for line in batch:
            report.lines += 1
            seq = report.lines
            add_totals(report.totals, line)
            rec = (
                pays.get(line.order_no)
                if line.kind == "payment"
                else (refs.get(line.refund_no) if line.refund_no else None)
            )
            owner = rec or pays.get(line.order_no)
            result = await self._classify(line, rec, owner, seq, report)
            report.results[result] += 1
            row: dict[str, Any] = {
                "run_id": report.run_id,
                "seq": seq,
                "kind": line.kind,
                "merchant_id": owner["merchant_id"] if owner else None,
                "livemode": owner["livemode"] if owner else None,
                "payment_id": payment_id(owner),
                "refund_id": rec["id"] if rec and line.kind == "refund" else None,
                "order_no": line.order_no,
                "refund_no": line.refund_no,
                "channel_trade_no": line.channel_trade_no,
                "channel_refund_no": line.channel_refund_no,
                "amount": line.amount,
                "settled": line.settled,
                "fee": line.fee,
                "currency": line.currency,
                "booked_ms": line.time,
                "result": result,
            }
            rows.append(row)
            if rec is not None and result != "needs_review" and line.status == "succeeded":
                discount = line.discount if line.kind == "payment" else -line.discount
                total = sums.setdefault((rec["merchant_id"], line.currency), [0, 0])
                total[0] += line.fee
                total[1] += discount
        await sql.write_lines(conn, rows)
        if self.progress is not None:
            self.progress(len(batch))

    async def _classify(
        self,
        line: StatementLine,
        rec: dict[str, Any] | None,
        owner: dict[str, Any] | None,
        seq: int,
        report: RunReport,
    ) -> str:
        def review(kind: str, note: str | None = None) -> str:
            report.needs_review += 1
            report.discrepancies.append(
                Discrepancy(
                    kind,
                    "needs_review",
                    seq=seq,
                    merchant_id=owner["merchant_id"] if owner else None,
                    payment_id=payment_id(owner),
                    refund_id=rec["id"] if rec and line.kind == "refund" else None,
                    channel_trade_no=line.channel_trade_no,
                    ours=ours(rec) if rec else None,
                    theirs=theirs(line),
                    note=note,
                )
            )
            return "needs_review"

        if rec is None:
            return review("missing_here", "the record has no such " + line.kind)
        if rec["channel"] != self.account:
            return review("missing_here", f"recorded under account {rec['channel']}")
        if rec["amount"] != line.amount or rec["currency"] != line.currency:
            return review("amount_mismatch")
        if rec["status"] == line.status:
            report.matched += 1
            return "matched"
        if line.status != "succeeded":
            return review("status_mismatch")
        try:
            if line.kind == "payment":
                now = await self.fixer.payment(rec["merchant_id"], rec["id"])
            else:
                now = await self.fixer.refund(rec["merchant_id"], rec["id"])
        except (ChannelError, ChannelProblem, TradeMismatch) as exc:
            return review("status_mismatch", f"channel query failed: {exc}")
        if now != "succeeded":
            return review("status_mismatch", f"after a channel query the status is {now}")
        report.fixed += 1
        report.discrepancies.append(
            Discrepancy(
                "status_mismatch",
                "fixed",
                seq=seq,
                merchant_id=rec["merchant_id"],
                payment_id=rec["id"] if line.kind == "payment" else rec["payment_id"],
                refund_id=rec["id"] if line.kind == "refund" else None,
                channel_trade_no=line.channel_trade_no,
                ours=ours(rec),
                theirs=theirs(line),
                note=f"was {rec['status']}; the channel's answer was applied",
            )
        )
        return "fixed"

    async def _record_side(self, conn: Any, day: date, report: RunReport) -> None:
        start, end = day_bounds(day)
        await sql.analyze_lines(conn)
        after = ""
        while page := await sql.unmatched_payments(
            conn, report.run_id, self.account, start, end, after, BATCH
        ):
            for row in page:
                try:
                    paid = await self.fixer.paid_ms(row)
                except (ChannelError, ChannelProblem) as exc:
                    paid, note = None, f"channel query failed: {exc}"
                else:
                    note = "paid in the record, not on the channel's statement"
                if paid is not None and not start <= paid < end:
                    # The channel booked it on the day before or after: that day's statement.
                    report.neighbour_day += 1
                    continue
                self._missing_there(report, row, "payment", note)
            after = page[-1]["id"]
        after = ""
        while page := await sql.unmatched_refunds(
            conn, report.run_id, self.account, start, end, after, BATCH
        ):
            for row in page:
                self._missing_there(report, row, "refund", "refunded in the record only")
            after = page[-1]["id"]

    @staticmethod
    def _missing_there(report: RunReport, row: dict[str, Any], kind: str, note: str) -> None:
        report.needs_review += 1
        report.discrepancies.append(
            Discrepancy(
                "missing_there",
                "needs_review",
                merchant_id=row["merchant_id"],
                payment_id=row["id"] if kind == "payment" else row["payment_id"],
                refund_id=row["id"] if kind == "refund" else None,
                channel_trade_no=row.get("channel_trade_no"),
                ours={k: v for k, v in row.items() if k not in ("merchant_id", "livemode")},
                note=note,
            )
        )
