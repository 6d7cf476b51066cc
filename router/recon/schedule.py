"""Reconciliation and settlement every morning by themselves: at `PAYROUTER_RECON_AT` (China
time) one router process reconciles yesterday for every account of the routing file, then,
once every account's run is done, settles the day T+1 and announces the settlements
(`router.settle`; what it does not finish, such as events Redis could not take, the next look
or `payrouter settle run` does).

Every `serve` process runs this loop; a lease in Redis per day (`recon:<YYYY-MM-DD>`,
`router.store.leases`) lets exactly one of them do the day. The holder renews the lease while
it runs; if it dies, the lease expires and the next process to look takes the day over. A
finished day's lease is kept (`done`) for `DONE_S`; a day whose run failed (a statement not
published yet, a channel or the record down) for `RETRY_S` only, then it is tried again.
Time is the runtime's injectable clock, so a test moves it instead of waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from datetime import date, datetime, time

from channels.statement import CHINA_TIME
from router.payments.worker import RequeryWorker
from router.recon.fix import reconcile, refresh_gauges, yesterday
from router.recon.report import RunReport
from router.record import Record
from router.record.connect import RecordUnavailable
from router.settle import settle_day
from router.settle.announce import announce
from router.store.errors import STORE_UNAVAILABLE
from router.store.leases import Leases

log = logging.getLogger("payrouter.recon")
LEASE_S = 120.0
"""How long a silent holder keeps the day (it renews every third of this while it runs)."""
DONE_S = 3 * 86400.0
RETRY_S = 900.0
POLL_S = 60.0


def due_day(now: datetime, at: time | None) -> date | None:
    """Yesterday (China time) once `at` has passed today; None before it, or when off."""
    china = now.astimezone(CHINA_TIME)
    if at is None or china.time() < at:
        return None
    return yesterday(china)


class DailyReconciliation:
    """The loop `serve` runs (`router.app`); `run_once` is one look at the clock."""

    def __init__(self, worker: RequeryWorker, record: Record, *, lease_s: float = LEASE_S) -> None:
        self.worker = worker
        self.rt = worker.rt
        self.record = record
        self.engine = record.engine
        self.lease_s = lease_s
        self.leases = Leases(self.rt.store.redis)
        self.holder = secrets.token_hex(8)
        self.done: date | None = None

    def due(self) -> date | None:
        """The day to reconcile now (`due_day` at the runtime clock's time)."""
        return due_day(self.rt.clock.utcnow(), self.rt.settings.recon_at)

    async def run_once(self) -> list[RunReport] | None:
        """Reconcile the due day if no process has it; the reports, or None if nothing ran."""
        day = self.due()
        if day is None or day == self.done:
            return None
        name = f"recon:{day.isoformat()}"
        ttl_ms = int(self.lease_s * 1000)
        if not await self.leases.take(name, self.holder, ttl_ms):
            return None
        log.info("reconciling %s (lease %s)", day, self.holder)
        stop = asyncio.Event()
        renewing = asyncio.create_task(self._renew(name, ttl_ms, stop))
        ok = False
        try:
            reports = await reconcile(self.worker, self.engine, day)
            ok = all(r.status == "done" for r in reports)
        finally:
            stop.set()
            await renewing
            keep = DONE_S if ok else RETRY_S
            await self.leases.finish(name, self.holder, int(keep * 1000))
        if ok:
            self.done = day
            await self._settle(day)
        for r in reports:
            log.info(
                "reconciled %s %s: %s, %d lines, %d matched, %d fixed, %d need review",
                r.account,
                r.day,
                r.status,
                r.lines,
                r.matched,
                r.fixed,
                r.needs_review,
            )
        return reports

    async def _settle(self, day: date) -> None:
        """Settle the reconciled day and announce it; a failure is logged, and the operator's
        `payrouter settle run` (idempotent) finishes the day."""
        problem: Exception | None = None
        try:
            outcome = await settle_day(self.record, day.isoformat(), self.rt.clock)
            sent = await announce(self.record, self.rt.store, day.isoformat(), self.rt.clock)
        except RecordUnavailable as exc:
            problem = exc
        except STORE_UNAVAILABLE as exc:
            problem = exc
        if problem is not None:
            log.warning(
                "settlement of %s not finished: %s; run `payrouter settle run`", day, problem
            )
            return
        made = sum(1 for s in outcome.settlements if s["created"])
        log.info(
            "settled %s: %d settlement(s) made, %d already made, %d event(s) sent, %s",
            day,
            made,
            len(outcome.settlements) - made,
            len(sent),
            "complete" if outcome.complete else f"pending {outcome.pending_accounts}",
        )

    async def _renew(self, name: str, ttl_ms: int, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.lease_s / 3)
                return
            try:
                if not await self.leases.renew(name, self.holder, ttl_ms):
                    log.warning("reconciliation lease %s lost while running", name)
            except STORE_UNAVAILABLE as exc:
                log.warning("cannot renew the reconciliation lease %s: %s", name, exc)

    async def run(self, stop: asyncio.Event, poll_s: float = POLL_S) -> None:
        """Look every `poll_s` until `stop` is set."""
        while not stop.is_set():
            try:
                await refresh_gauges(self.rt.metrics, self.engine)
            except RecordUnavailable as exc:
                log.warning("reconciliation gauges: record unreachable: %s", exc)
            try:
                await self.run_once()
            except STORE_UNAVAILABLE as exc:
                log.warning("reconciliation schedule: store unreachable: %s", exc)
            except Exception:
                log.exception("reconciliation failed; trying again later")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=poll_s)
