"""Reconciliation's hands in the router: the payment service asks the channel and applies its
answer (`RequeryWorker.check`, the same path as a lost notification's re-query), and the runs
of every configured account."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from channels.base import OrderRef
from channels.statement import CHINA_TIME
from router.clock import from_ms
from router.metrics import Metrics
from router.payments.worker import RequeryWorker
from router.recon.engine import Reconciler
from router.recon.report import RunReport
from router.record.recon_reads import last_done
from router.record.schema import DISCREPANCY_KINDS, RECON_RESULTS
from router.settings import ConfigurationError


class ServiceFixer:
    """`router.recon.engine.Fixer` through the router's own payment service."""

    def __init__(self, worker: RequeryWorker) -> None:
        self.worker = worker
        self.rt = worker.rt

    async def payment(self, merchant: str, pay_id: str) -> str | None:
        await self.worker.check(merchant, pay_id)
        stored = await self.rt.store.payments.get(merchant, pay_id)
        return stored.payment.status if stored is not None else None

    async def refund(self, merchant: str, re_id: str) -> str | None:
        await self.worker.check(merchant, re_id)
        stored = await self.rt.store.refunds.get(merchant, re_id)
        return stored.refund.status if stored is not None else None

    async def paid_ms(self, row: dict[str, Any]) -> int | None:
        channel = self.rt.channel(row.get("channel", ""))
        ref = OrderRef(
            order_no=row["id"],
            created_at=from_ms(int(row["created_ms"])),
            channel_trade_no=row.get("channel_trade_no"),
        )
        trade = await channel.query(ref)
        return int(trade.paid_at.timestamp() * 1000) if trade.paid_at is not None else None


def yesterday(now: datetime) -> date:
    """The day before `now`'s, in China time: the statement a morning run reconciles."""
    return (now.astimezone(CHINA_TIME) - timedelta(days=1)).date()


def accounts_of(worker: RequeryWorker, names: Sequence[str] | None) -> list[tuple[str, str]]:
    """(account, wallet) of every account in the routing file, or of the ones named;
    `ConfigurationError` for a name the routing file does not have."""
    configured = worker.rt.config.config.accounts
    if names:
        unknown = [n for n in names if n not in configured]
        if unknown:
            raise ConfigurationError(
                f"--account {unknown[0]}: not an account of the routing file "
                f"({', '.join(configured)})"
            )
        return [(n, configured[n].type) for n in names]
    return [(name, account.type) for name, account in configured.items()]


async def reconcile(
    worker: RequeryWorker,
    record_engine: Any,
    day: date,
    accounts: Sequence[str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[RunReport]:
    """Reconcile `day` for each account, one after the other; one report each."""
    rt = worker.rt
    fixer = _AccountFixer(worker)
    reports = []
    for account, wallet in accounts_of(worker, accounts):
        fixer.account = account
        reconciler = Reconciler(
            record_engine, rt.channel(account), wallet, fixer, rt.clock, progress
        )
        started = time.perf_counter()
        report = await reconciler.run(day)
        observe(rt.metrics, report, time.perf_counter() - started, rt.clock.now())
        reports.append(report)
    return reports


class _AccountFixer(ServiceFixer):
    """A `ServiceFixer` that knows which account's run it serves (for `paid_ms`)."""

    account = ""

    async def paid_ms(self, row: dict[str, Any]) -> int | None:
        return await super().paid_ms({"channel": self.account, **row})


def observe(metrics: Metrics, report: RunReport, seconds: float, now_s: float) -> None:
    """A run's figures into the metrics (a failed run leaves the last success's time)."""
    account = report.account
    metrics.recon_duration.labels(account).observe(seconds)
    for result in RECON_RESULTS:
        metrics.recon_lines.labels(account, result).inc(report.results.get(result, 0))
    if report.status != "done":
        return
    counts = {
        kind: sum(
            1 for d in report.discrepancies if d.kind == kind and d.resolution == "needs_review"
        )
        for kind in DISCREPANCY_KINDS
    }
    set_last(metrics, account, now_s, counts)


def set_last(metrics: Metrics, account: str, finished_s: float, counts: dict[str, int]) -> None:
    """The gauges of an account's last successful run."""
    metrics.recon_last_success.labels(account).set(finished_s)
    for kind in DISCREPANCY_KINDS:
        metrics.recon_discrepancies.labels(account, kind).set(counts.get(kind, 0))


async def refresh_gauges(metrics: Metrics, record_engine: Any) -> None:
    """Every router exports the last successful run of each account as the record has it
    (whichever process ran it, and across restarts), so the alerts see one truth."""
    for last in await last_done(record_engine):
        set_last(metrics, last.account, last.finished_ms / 1000, last.needs_review)
