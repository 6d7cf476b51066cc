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
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol

from channels.base import Channel, StatementLine
from channels.errors import ChannelError
from channels.statement import CHINA_TIME
from router.clock import Clock
from router.domain_errors import ChannelProblem, TradeMismatch
from router.record import recon as sql

log = logging.getLogger("payrouter.recon")
BATCH = 1000
"""Lines per lookup and bulk insert."""
ANALYZE_FROM = 1024
"""Postings a run writes before it refreshes the ledger's statistics (then at each
doubling: `router.record.recon.analyze_ledger`)."""


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


@dataclass
class Discrepancy:
    kind: str
    resolution: str
    seq: int | None = None
    merchant_id: str | None = None
    payment_id: str | None = None
    refund_id: str | None = None
    channel_trade_no: str | None = None
    ours: dict[str, Any] | None = None
    theirs: dict[str, Any] | None = None
    note: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The contract's shape of a discrepancy."""
        return {
            "kind": self.kind,
            "payment_id": self.payment_id,
            "refund_id": self.refund_id,
            "channel_trade_no": self.channel_trade_no,
            "ours": self.ours,
            "theirs": self.theirs,
            "resolution": self.resolution,
        }


@dataclass
class RunReport:
    """One run's outcome, as `payrouter recon run` prints it."""

    run_id: str
    day: str
    account: str
    status: str = "running"
    attempts: int = 0
    lines: int = 0
    matched: int = 0
    fixed: int = 0
    needs_review: int = 0
    neighbour_day: int = 0
    results: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    totals: dict[str, dict[str, int]] = field(default_factory=dict)
    discrepancies: list[Discrepancy] = field(default_factory=list)
    error: str | None = None
    postings: int = 0

    def as_json(self) -> dict[str, Any]:
        """The contract's per-account object, exactly: `account`, `lines`, `matched` and
        the `discrepancies` (the run's id, status and totals are in the record and at
        `GET /admin/recon/runs/{id}`)."""
        return {
            "account": self.account,
            "lines": self.lines,
            "matched": self.matched,
            "discrepancies": [d.as_json() for d in self.discrepancies],
        }


def day_bounds(day: date) -> tuple[int, int]:
    """The statement day in China time as [start, end) epoch milliseconds."""
    start = datetime.combine(day, time(0), CHINA_TIME)
    return int(start.timestamp() * 1000), int((start + timedelta(days=1)).timestamp() * 1000)


def _theirs(line: StatementLine) -> dict[str, Any]:
    return {
        "order_no": line.order_no,
        "refund_no": line.refund_no,
        "status": line.status,
        "amount": line.amount,
        "settled": line.settled,
        "fee": line.fee,
        "currency": line.currency,
        "booked_ms": line.time,
    }


def _ours(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("status", "amount", "currency", "channel", "paid_ms", "succeeded_ms")
    return {k: row[k] for k in keys if k in row}


def _add_totals(totals: dict[str, dict[str, int]], line: StatementLine) -> None:
    t = totals.setdefault(
        line.currency,
        {
            "payments": 0,
            "payment_lines": 0,
            "refunds": 0,
            "refund_lines": 0,
            "settled": 0,
            "fees": 0,
            "discounts": 0,
        },
    )
    sign = 1 if line.kind == "payment" else -1
    if line.kind == "payment":
        t["payments"] += line.amount
        t["payment_lines"] += 1
    else:
        t["refunds"] += line.amount
        t["refund_lines"] += 1
    t["settled"] += sign * line.settled
    t["fees"] += line.fee
    t["discounts"] += sign * line.discount


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
                await self._statement(conn, day, report)
                await self._record_side(conn, day, report)
                rows = [
                    {"run_id": rid, "number": n, **_discrepancy_row(d)}
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

    async def _statement(self, conn: Any, day: date, report: RunReport) -> None:
        batch: list[StatementLine] = []
        async for line in self.channel.statement(day):
            batch.append(line)
            if len(batch) >= BATCH:
                await self._batch(conn, batch, report)
                batch = []
        if batch:
            await self._batch(conn, batch, report)

    async def _batch(self, conn: Any, batch: list[StatementLine], report: RunReport) -> None:
        pays, refs = await sql.lookup(
            conn,
            # A refund's payment too: a refund the record lacks still names whose it is.
            [ln.order_no for ln in batch],
            [ln.refund_no for ln in batch if ln.kind == "refund" and ln.refund_no],
        )
        rows: list[dict[str, Any]] = []
        movements = []
        for line in batch:
            report.lines += 1
            seq = report.lines
            _add_totals(report.totals, line)
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
                "payment_id": _payment_id(owner),
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
                movements += sql.fee_and_discount(
                    rec["id"],
                    self.account,
                    rec["merchant_id"],
                    line.currency,
                    line.fee,
                    discount,
                    line.time,
                )
        await sql.write_lines(conn, rows)
        before = report.postings
        report.postings += await sql.post(conn, self.engine, movements)
        if report.postings >= ANALYZE_FROM and report.postings.bit_length() > before.bit_length():
            await sql.analyze_ledger(self.engine)
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
                    payment_id=_payment_id(owner),
                    refund_id=rec["id"] if rec and line.kind == "refund" else None,
                    channel_trade_no=line.channel_trade_no,
                    ours=_ours(rec) if rec else None,
                    theirs=_theirs(line),
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
                ours=_ours(rec),
                theirs=_theirs(line),
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


def _payment_id(row: dict[str, Any] | None) -> str | None:
    """The payment a record row is or belongs to (a refund row has `payment_id`)."""
    if row is None:
        return None
    return str(row.get("payment_id") or row["id"])


def _discrepancy_row(d: Discrepancy) -> dict[str, Any]:
    return {
        "seq": d.seq,
        "kind": d.kind,
        "merchant_id": d.merchant_id,
        "payment_id": d.payment_id,
        "refund_id": d.refund_id,
        "channel_trade_no": d.channel_trade_no,
        "ours": d.ours,
        "theirs": d.theirs,
        "resolution": d.resolution,
        "note": d.note,
    }
