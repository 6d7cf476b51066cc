"""`settle run` for one day: settle every merchant, currency and mode from the day's
reconciled lines, each settlement in its own transaction, at most once.

A day is settled only when every reconciliation run of it is done: a settlement is made once
per merchant and day (the record's unique constraint), and the lines of a run still under way
(or failed) may belong to any merchant, so settling the others first would leave those lines
out for good. Such a day reports its unfinished accounts as pending and settles nothing.
Lines whose result is `needs_review` are never settled (a person decides about them; once
reconciliation fixes them they count in the next day not yet settled, docs/reconciliation.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from channels.statement import CHINA_TIME
from router.clock import Clock
from router.ids import new_id
from router.record import Record
from router.record import settlements as rows
from router.settle.compute import Key, Totals

SETTLEMENT_PREFIX = "stl"
DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass
class Outcome:
    """What a run did: every settlement of the day (made now or before), the accounts whose
    reconciliation is not done, and the lines left for review."""

    day: str
    settlements: list[dict[str, Any]] = field(default_factory=list)
    pending_accounts: list[str] = field(default_factory=list)
    needs_review: int = 0
    runs: int = 0

    @property
    def complete(self) -> bool:
        """Every account of the day was reconciled (and there was at least one)."""
        return self.runs > 0 and not self.pending_accounts

    def as_json(self) -> dict[str, Any]:
        return {
            "date": self.day,
            "settlements": self.settlements,
            "pending_accounts": self.pending_accounts,
            "needs_review_lines": self.needs_review,
        }


def yesterday(clock: Clock) -> str:
    """The day before today in China time, where every channel's statement day ends."""
    today = datetime.fromtimestamp(clock.now(), CHINA_TIME).date()
    return (today - timedelta(days=1)).isoformat()


def parse_day(text: str) -> str:
    """A `YYYY-MM-DD` day that exists; ValueError otherwise."""
    try:
        if DAY.fullmatch(text):
            return date.fromisoformat(text).isoformat()
    except ValueError:
        pass
    raise ValueError(f"{text!r} is not a day (YYYY-MM-DD)")


def _report(row: dict[str, Any], created: bool) -> dict[str, Any]:
    return {
        "id": row["id"],
        "merchant_id": row["merchant_id"],
        "currency": row["currency"],
        "livemode": bool(row["livemode"]),
        "gross": int(row["gross"]),
        "refunds": int(row["refunds"]),
        "discounts": int(row["discounts"]),
        "fees": int(row["fees"]),
        "net": int(row["net"]),
        "payment_count": int(row["payment_count"]),
        "refund_count": int(row["refund_count"]),
        "created": created,
    }


def _row(day: str, key: Key, totals: Totals, now_ms: int) -> dict[str, Any]:
    return {
        "id": new_id(SETTLEMENT_PREFIX),
        "merchant_id": key.merchant_id,
        "day": day,
        "currency": key.currency,
        "livemode": key.livemode,
        "gross": totals.gross,
        "refunds": totals.refunds,
        "discounts": totals.discounts,
        "fees": totals.fees,
        "net": totals.net,
        "payment_count": totals.payment_count,
        "refund_count": totals.refund_count,
        "created_ms": now_ms,
    }


async def settle_day(record: Record, day: str, clock: Clock) -> Outcome:
    """Settle `day` (see the module's docstring); what was found and made."""
    outcome = Outcome(day)
    async with record.engine.connect() as conn:
        runs = await rows.day_runs(conn, day)
        outcome.runs = len(runs)
        outcome.pending_accounts = [r["account"] for r in runs if r["status"] != "done"]
        outcome.needs_review = sum(int(r["needs_review"] or 0) for r in runs)
        if not outcome.complete:
            return outcome
        figures = {
            Key(t["merchant_id"], t["currency"], bool(t["livemode"])): Totals(
                gross=t["gross"],
                refunds=t["refunds"],
                discounts=t["discounts"],
                fees=t["fees"],
                payment_count=t["payment_count"],
                refund_count=t["refund_count"],
            )
            for t in await rows.day_totals(conn, day)
        }
    for key, totals in figures.items():
        async with record.engine.begin() as conn:
            existing = await rows.find(conn, key.merchant_id, day, key.currency, key.livemode)
            if existing is None:
                row = _row(day, key, totals, clock.now_ms())
                if await rows.write(conn, row):
                    outcome.settlements.append(_report(row, True))
                    continue
                existing = await rows.find(conn, key.merchant_id, day, key.currency, key.livemode)
            if existing is not None:
                outcome.settlements.append(_report(existing, False))
    return outcome
