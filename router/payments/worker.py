"""The re-query worker: no payment is left stranded.

Every payment not yet final sits in the shared schedule (`router.store.schedule`). Each router
process polls it; a Lua script hands each due entry to one process at a time, under a lease,
so any number of processes can run this worker side by side. For each payment it finds:

- `pending`, past `expires_at`: close the order at the channel, then the payment (`closed`);
  if the buyer paid just before, the channel refuses and the payment follows the channel;
- `pending`: query the channel, in case its notification was lost; apply what it says, else
  look again later, backing off from `requery_after` to `requery_max`;
- `processing` beyond the grace period (its creating process died, or the channel's answer
  never came): ask the channel; a paid order is `succeeded`, an order that exists is closed
  there first, and the payment is `failed`; the buyer can never pay for it afterwards.
- a `pending` barcode payment (the buyer is confirming on their phone): query on UnionPay's
  suggested schedule, 1, 2, 4, 8, 16, 32 s apart.
- a `pending` refund: ask the channel, and re-send the same refund if it has none
  (`router.payments.refunds.RefundService.settle`).
- orders a failover abandoned at other accounts: closed there (`router.payments.abandoned`).

An entry's lease must outlast the channel calls made for it, or a second process would take
it meanwhile: at most `CALLS_PER_ENTRY` calls (query, then close, which is a query and a void
at UnionPay; or a refund query, then a refund, which Alipay confirms by a query), each bounded
by its account's `total` timeout. `minimum_lease_s` is that bound for the routing file in force
(35 s with the default 10 s timeouts); `PAYROUTER_WORKER_LEASE` may set a longer lease, never a
shorter one. A pass claims only what it starts at once, so no lease runs out while its entry
waits for a slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from channels.errors import ChannelError
from router.domain_errors import ChannelProblem, TradeMismatch
from router.models import FINAL_STATUSES
from router.outage import StoreOutage
from router.payments.abandoned import RETRY_S, close_abandoned
from router.payments.refunds import RefundService
from router.payments.service import PaymentService
from router.payments.stranded import settle_stranded
from router.routing.config import RoutingConfig
from router.runtime import Runtime
from router.settings import ConfigurationError, Settings
from router.store.errors import STORE_UNAVAILABLE
from router.store.payments import StoredPayment
from router.store.schedule import Due, kind_of

log = logging.getLogger("payrouter.worker")
CALLS_PER_ENTRY = 3
"""The most channel calls one entry can take, one after the other (see above)."""
LEASE_MARGIN_S = 5.0
"""Time for the store round trips around those calls."""


def minimum_lease_s(config: RoutingConfig) -> float:
    """The shortest safe lease for `config`: its slowest account's calls, one after another."""
    slowest = max(account.timeouts.total for account in config.accounts.values())
    return CALLS_PER_ENTRY * slowest + LEASE_MARGIN_S


def check_lease(settings: Settings, config: RoutingConfig) -> None:
    """Refuse a `PAYROUTER_WORKER_LEASE` shorter than the routing file's calls may take."""
    lease, minimum = settings.workers.lease_s, minimum_lease_s(config)
    if lease is not None and lease < minimum:
        raise ConfigurationError(
            f"PAYROUTER_WORKER_LEASE={lease:g} is shorter than the re-query worker may spend "
            f"on one entry with the routing file's timeouts ({CALLS_PER_ENTRY} channel calls "
            f"and {LEASE_MARGIN_S:g} s): set at least {minimum:g} seconds, or leave it unset"
        )


class RequeryWorker:
    def __init__(self, runtime: Runtime, service: PaymentService, refunds: RefundService) -> None:
        self.rt = runtime
        self.service = service
        self.refunds = refunds
        self.outage = StoreOutage(log, "re-query worker", runtime.clock)
        """How this worker's polls are faring against the store."""

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set."""
        interval = self.rt.settings.workers.poll_interval_s
        while not stop.is_set():
            try:
                handled = await self.run_once()
                self.outage.recovered()
            except STORE_UNAVAILABLE as exc:
                self.outage.failed(exc)
                handled = 0
            except Exception:
                log.exception("re-query pass failed; retrying")
                handled = 0
            if handled == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=interval)

    def lease_s(self) -> float:
        """The lease an entry is claimed under: as set, never shorter than the routing file in
        force needs (a reload may have made its timeouts longer)."""
        minimum = minimum_lease_s(self.rt.config.config)
        return max(self.rt.settings.workers.lease_s or minimum, minimum)

    async def run_once(self) -> int:
        """Check every payment due now (one batch). Returns how many were checked."""
        w = self.rt.settings.workers
        due = await self.rt.store.schedule.claim(
            self.rt.clock.now_ms(), int(self.lease_s() * 1000), w.batch
        )
        await asyncio.gather(*(self._guarded(entry) for entry in due))
        return len(due)

    async def _guarded(self, entry: Due) -> None:
        mch, pay_id = entry.merchant_id, entry.object_id
        try:
            outcome = await self._check(entry)
        except TradeMismatch:
            # Counted and logged where it was found (`router.payments.mismatch`).
            outcome = "mismatch"
            await self._later(mch, pay_id, self.rt.settings.workers.requery_max_s)
        except (ChannelError, ChannelProblem) as exc:
            outcome = "channel_error"
            log.warning("re-query of %s failed: %s %s", pay_id, exc.code, exc.message)
            if entry.kind == "abandoned":
                await self._abandoned_later(mch, pay_id, RETRY_S)
            else:
                await self._later(mch, pay_id, self.rt.settings.workers.requery_after_s)
        self.rt.metrics.worker_runs.labels(outcome).inc()

    async def check(self, mch: str, object_id: str) -> str:
        """Look at one payment or refund and move it on. Returns what was found, for metrics."""
        return await self._check(Due(kind_of(object_id), mch, object_id))

    async def _check(self, entry: Due) -> str:
        mch, pay_id = entry.merchant_id, entry.object_id
        if entry.kind == "refund":
            return await self._refund(mch, pay_id)
        if entry.kind == "abandoned":
            return await self._abandoned(mch, pay_id)
        stored = await self.rt.store.payments.get(mch, pay_id)
        if stored is None or stored.payment.status in FINAL_STATUSES:
            await self.rt.store.schedule.done(mch, pay_id)
            return "gone" if stored is None else "final"
        if stored.payment.status == "processing":
            return await self._stranded(stored)
        return await self._pending(stored)

    async def _pending(self, stored: StoredPayment) -> str:
        rt, p = self.rt, stored.payment
        now = rt.clock.now()
        expires = datetime.fromisoformat(p.expires_at).timestamp() if p.expires_at else None
        if expires is not None and now >= expires:
            status = await self.service.close_at_channel(stored, source="expiry")
            return f"expired_{status}"
        if p.channel is None:
            # A checkout waiting for a buyer's wallet: nothing to ask before it expires.
            wait = rt.settings.workers.requery_max_s if expires is None else expires - now
            await self._later(stored.merchant_id, p.id, max(wait, 0.0))
            return "checkout_waiting"
        channel = rt.channel(p.channel)
        trade = await rt.call(p.channel, "query", lambda: channel.query(stored.order_ref()))
        status = await self.service.apply_trade(stored, trade, source="requery")
        if status in FINAL_STATUSES:
            return f"found_{status}"
        age = now - stored.created_ms / 1000
        w = rt.settings.workers
        if p.method == "barcode":
            wait = min(max(age, 1.0), 32.0)
        else:
            wait = min(max(age / 4, w.requery_after_s), w.requery_max_s)
        if expires is not None:
            wait = min(wait, max(expires - now, 0.0))
        await self._later(stored.merchant_id, p.id, wait)
        return "still_pending"

    async def _stranded(self, stored: StoredPayment) -> str:
        rt, p = self.rt, stored.payment
        w = rt.settings.workers
        age = rt.clock.now() - stored.created_ms / 1000
        if age < w.processing_grace_s:
            await self._later(stored.merchant_id, p.id, w.processing_grace_s - age)
            return "processing_recent"
        status = await settle_stranded(self.service, stored)
        return f"stranded_{status}"

    async def _refund(self, mch: str, re_id: str) -> str:
        stored = await self.rt.store.refunds.get(mch, re_id)
        if stored is None or stored.refund.status != "pending":
            await self.rt.store.schedule.done(mch, re_id)
            return "gone" if stored is None else "final"
        found = await self.refunds.settle(stored)
        now = await self.rt.store.refunds.get(mch, re_id)
        if now is not None and now.refund.status == "pending":
            age = self.rt.clock.now() - stored.created_ms / 1000
            w = self.rt.settings.workers
            await self._later(mch, re_id, min(max(age / 4, w.requery_after_s), w.requery_max_s))
        return found

    async def _abandoned(self, mch: str, pay_id: str) -> str:
        stored = await self.rt.store.payments.get(mch, pay_id)
        left = await close_abandoned(self.rt, stored) if stored is not None else []
        if left:
            await self._abandoned_later(mch, pay_id, RETRY_S)
            return "abandoned_left"
        await self.rt.store.schedule.done_abandoned(mch, pay_id)
        return "abandoned_settled"

    async def _abandoned_later(self, mch: str, pay_id: str, seconds: float) -> None:
        due = self.rt.clock.now_ms() + int(seconds * 1000)
        await self.rt.store.schedule.put_abandoned(mch, pay_id, due)

    async def _later(self, mch: str, pay_id: str, seconds: float) -> None:
        await self.rt.store.schedule.put(mch, pay_id, self.rt.clock.now_ms() + int(seconds * 1000))
