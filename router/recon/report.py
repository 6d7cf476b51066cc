"""What a reconciliation run found: its discrepancies and its report, and how a statement
line and a record row are shown in them."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from channels.base import StatementLine


@dataclass
class Discrepancy:
    """One disagreement between a statement line (or a record row) and the other side."""

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


def theirs(line: StatementLine) -> dict[str, Any]:
    """A statement line as a discrepancy shows it (`theirs`)."""
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


def ours(row: dict[str, Any]) -> dict[str, Any]:
    """A record row as a discrepancy shows it (`ours`)."""
    keys = ("status", "amount", "currency", "channel", "paid_ms", "succeeded_ms")
    return {k: row[k] for k in keys if k in row}


def add_totals(totals: dict[str, dict[str, int]], line: StatementLine) -> None:
    """Count `line` into the run's totals of its currency."""
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


def payment_id(row: dict[str, Any] | None) -> str | None:
    """The payment a record row is or belongs to (a refund row has `payment_id`)."""
    if row is None:
        return None
    return str(row.get("payment_id") or row["id"])


def discrepancy_row(d: Discrepancy) -> dict[str, Any]:
    """`d` as a `recon_discrepancies` row (without run id and number)."""
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
