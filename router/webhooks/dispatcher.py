"""Merchant webhooks: signed per Standard Webhooks, delivered at least once, never lost.

The dispatcher runs in every router process. It reads new events from the partitions' outbox
streams as one consumer of the shared group, takes over entries a dead process left pending,
and claims due retries from the shared schedules (`router.store.events`); its polls cost the
same whatever the number of merchants. Each delivery:

- goes to the payment's `notify_url`, else the merchant's default endpoint;
- is signed with every webhook secret in force (two during a rotation): headers `webhook-id`,
  `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256(id.timestamp.body)> ...`;
- in live mode, refuses targets that are not https or not public: IP literals and reserved
  names before connecting (`router.urls.live_url_problem`; aiohttp does not resolve IP
  literals), host names by the resolver at connect time, so DNS cannot swap them in later;
- runs with connect and total timeouts and a per-host concurrency cap, so one slow merchant
  cannot stall deliveries to others;
- 2xx: delivered. 410: the endpoint is disabled for that merchant and the event is dead.
  Anything else: retried on the schedule (`PAYROUTER_WEBHOOK_SCHEDULE`, jittered, never
  sooner than `Retry-After`); after the last attempt the event is a dead letter.

Every failure of an attempt, whatever raised it (a URL stored before it was validated, a
secret that cannot be decrypted, a receiver's odd answer, a bug), is recorded as an attempt
with an error text and follows the schedule. Only store errors escape an attempt: the event is
then taken again later. A store that cannot be reached costs the event nothing (it is logged
as an outage, `router.outage`); any other store error is counted against the event, which is
abandoned as a dead letter after `MAX_FAULTS` of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from router.clock import rfc3339
from router.outage import StoreOutage
from router.record import reads
from router.runtime import Runtime
from router.store.errors import STORE_UNAVAILABLE, StoreError, missing_stream_group
from router.store.events import (
    FINAL_STATES,
    MAX_FAULTS,
    OutboxEntry,
    StoredEvent,
    UnreadableEvent,
)
from router.urls import live_url_problem, url_problem
from router.webhooks.delivery import (
    SafeResolver,
    UnsafeTarget,
    retry_after,
    shown_url,
    signed_request,
)

__all__ = ["Dispatcher", "SafeResolver", "UnsafeTarget"]

log = logging.getLogger("payrouter.webhooks")
CONCURRENCY = 64
PER_HOST = 8
DRAIN_S = 2.0
"""How long a stopping dispatcher lets deliveries in flight finish."""
RETRY_LEASE_MARGIN_S = 5.0
"""Time for the store round trips around one delivery, within a retry's lease."""
REMOVE_AFTER_IDLE = 10
"""A consumer idle this many claim periods with nothing pending belongs to a dead process."""
UNDECRYPTABLE = (
    "the merchant's webhook secret cannot be decrypted (sealed under another PAYROUTER_SECRET_KEY?)"
)


@dataclass(frozen=True)
class Sent:
    """What one try came to, before it is recorded."""

    url: str
    outcome: str
    """answered, failed, unsafe, bad_url, bad_secret, error, disabled or deferred."""
    status: int | None = None
    error: str | None = None
    wait_s: float = 0.0
    ms: int = 0


class Dispatcher:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{random.randrange(1 << 30):x}"  # noqa: S311
        self._slots = asyncio.Semaphore(CONCURRENCY)
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._grouped = False
        self.outage = StoreOutage(log, "webhook dispatcher", rt.clock)
        """How this dispatcher's polls and deliveries are faring against the store."""
        timeout = aiohttp.ClientTimeout(
            total=rt.settings.webhook_timeout_s, sock_connect=rt.settings.webhook_connect_s
        )
        self._sandbox = aiohttp.ClientSession(timeout=timeout)
        self._live = aiohttp.ClientSession(
            timeout=timeout, connector=aiohttp.TCPConnector(resolver=SafeResolver())
        )

    async def close(self) -> None:
        """Let deliveries in flight finish (briefly), then leave the consumer group: this
        process's consumer is removed from every group where it holds nothing pending. What
        it still holds is taken over by another process, which removes it later."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=DRAIN_S)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._sandbox.close()
        await self._live.close()
        try:
            await self.rt.store.events.remove_consumers(0, only=self.consumer)
        except StoreError as exc:
            log.warning("webhook consumer %s not removed: %s", self.consumer, exc)

    async def run(self, stop: asyncio.Event) -> None:
        last_sweep = last_prune = 0.0
        claim_idle_s = self.rt.settings.webhook_claim_idle_s
        while not stop.is_set():
            try:
                if not self._grouped:
                    await self.rt.store.events.ensure_groups()
                    self._grouped = True
                if self.rt.clock.monotonic() - last_sweep >= min(1.0, claim_idle_s):
                    last_sweep = self.rt.clock.monotonic()
                    await self._sweep()
                if self.rt.clock.monotonic() - last_prune >= claim_idle_s:
                    last_prune = self.rt.clock.monotonic()
                    await self._prune()
                free = CONCURRENCY - len(self._tasks)
                if free <= 0:
                    await asyncio.sleep(0.05)
                    continue
                for entry in await self.rt.store.events.read_new(self.consumer, count=free):
                    self._spawn(entry.merchant_id, entry.event_id, entry)
                self.outage.recovered()
            except STORE_UNAVAILABLE as exc:
                self.outage.failed(exc)
                await asyncio.sleep(1.0)
            except Exception as exc:
                if missing_stream_group(exc):
                    # An outbox stream vanished with its group (flushed, restored from an older
                    # dump): create the groups again instead of failing every pass.
                    log.warning("webhook outbox group missing, creating it again: %s", exc)
                    self._grouped = False
                else:
                    log.exception("webhook dispatch pass failed; retrying")
                await asyncio.sleep(1.0)

    def retry_lease_s(self) -> float:
        """How long a claimed retry is hidden from other processes: one delivery's timeout and
        the store round trips around it (a pass claims only what it starts at once), so a
        process killed mid-delivery delays the retry that long at most."""
        return self.rt.settings.webhook_timeout_s + RETRY_LEASE_MARGIN_S

    async def _sweep(self) -> None:
        """Due retries, and outbox entries a dead process left unacknowledged."""
        events = self.rt.store.events
        now = self.rt.clock.now_ms()
        idle_ms = int(self.rt.settings.webhook_claim_idle_s * 1000)
        free = min(CONCURRENCY - len(self._tasks), 100)
        if free > 0:
            lease_ms = int(self.retry_lease_s() * 1000)
            for mch, evt_id in await events.claim_retries(now, lease_ms, free):
                self._spawn(mch, evt_id, None)
        for entry in await events.claim_stale(self.consumer, idle_ms, 50):
            self._spawn(entry.merchant_id, entry.event_id, entry)

    async def _prune(self) -> None:
        """Remove the consumers of processes that died: long idle and holding nothing (what a
        dead process held is taken over by `_sweep` first)."""
        idle_ms = int(self.rt.settings.webhook_claim_idle_s * 1000 * REMOVE_AFTER_IDLE)
        removed = await self.rt.store.events.remove_consumers(idle_ms)
        if removed:
            log.info("removed idle webhook consumers: %s", ", ".join(sorted(set(removed))))

    def _spawn(self, mch: str, evt_id: str, entry: OutboxEntry | None) -> None:
        task = asyncio.create_task(self._guarded(mch, evt_id, entry))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, mch: str, evt_id: str, entry: OutboxEntry | None) -> None:
        try:
            async with self._slots:
                await self.deliver(mch, evt_id)
            if entry is not None:
                await self.rt.store.events.ack(entry)
        except STORE_UNAVAILABLE as exc:
            # Not the event's fault: it is taken again once the store is back (its outbox entry
            # once idle, its retry once the lease ends), and no failure is counted against it.
            self.outage.failed(exc)
        except UnreadableEvent as exc:
            self.rt.damaged.report("event", f"{mch}/{evt_id}", exc.reason)
            await self._fault(mch, evt_id, entry, unreadable=exc.reason)
        except Exception:
            log.exception("webhook %s to merchant %s: processing failed", evt_id, mch)
            await self._fault(mch, evt_id, entry)

    async def _fault(
        self, mch: str, evt_id: str, entry: OutboxEntry | None, *, unreadable: str | None = None
    ) -> None:
        """Count a failure that left no attempt recorded. Left alone, the event is taken again
        (its outbox entry once idle, its retry once the lease ends); after `MAX_FAULTS` it is
        abandoned as a dead letter so it cannot be taken forever. An event whose record cannot
        be read (`unreadable` says why) is abandoned at once: trying again cannot help, and a
        dead letter can be resent once the record is repaired."""
        try:
            if unreadable is not None:
                error = f"its record cannot be read: {unreadable}"
            elif await self.rt.store.events.fault(mch, evt_id) < MAX_FAULTS:
                return
            else:
                log.error("webhook %s to merchant %s abandoned as a dead letter", evt_id, mch)
                error = f"abandoned after {MAX_FAULTS} failures to process it; see the router's log"
            await self._abandon(mch, evt_id, entry, error)
        except STORE_UNAVAILABLE as exc:
            self.outage.failed(exc)
        except Exception:
            log.exception("webhook %s to merchant %s: could not count the failure", evt_id, mch)

    async def _abandon(self, mch: str, evt_id: str, entry: OutboxEntry | None, error: str) -> None:
        """Make the event a dead letter with `error` as its last attempt, and stop taking it."""
        self._count("abandoned")
        self.rt.metrics.webhook_dead.inc()
        await self.rt.store.events.abandon(
            mch, evt_id, entry, self._attempt("", None, 0, error), self.rt.clock.now_ms()
        )

    async def _target(self, event: StoredEvent) -> str | None:
        store = self.rt.store
        url: Any = None
        if event.type.startswith("payment."):
            url = event.data.get("notify_url")
        else:
            payment = await store.payments.get(event.merchant_id, event.payment_id)
            if payment is None and self.rt.record is not None:
                # A resent event of a payment that left Redis (PAYROUTER_REDIS_RETENTION).
                payment = await reads.payment(self.rt.record, event.payment_id)
                if payment is not None and payment.merchant_id != event.merchant_id:
                    payment = None
            url = payment.payment.notify_url if payment else None
        if url is None:
            merchant = await store.merchants.get(event.merchant_id)
            url = merchant.notify_url if merchant else None
        return None if url is None else str(url)

    async def deliver(self, mch: str, evt_id: str) -> str:
        """One attempt at one event. Returns the outcome, for metrics and tests."""
        events = self.rt.store.events
        event = await events.get(mch, evt_id)
        if event is None or event.state in FINAL_STATES:
            return "skipped"
        url = await self._target(event)
        if url is None:
            await events.set_state(event, "no_endpoint")
            return self._count("no_endpoint")
        try:
            sent = await self._send(event, url)
        except StoreError:
            raise
        except Exception as exc:
            log.exception("webhook %s to merchant %s: unexpected error sending it", evt_id, mch)
            sent = Sent(url, "error", error=f"internal error ({type(exc).__name__})")
        return await self._settle(event, sent)

    async def _send(self, event: StoredEvent, url: str) -> Sent:
        livemode = bool(event.data.get("livemode"))
        problem = url_problem(url)
        if problem is not None:
            return Sent(url, "bad_url", error=f"the webhook URL {problem}")
        problem = live_url_problem(url) if livemode else None
        if problem is not None:
            return Sent(url, "unsafe", error=f"refused in live mode: {problem}")
        if await self.rt.store.events.endpoints.is_disabled(event.merchant_id, url):
            return Sent(url, "disabled", error="endpoint disabled (it answered 410 Gone)")
        try:
            secrets = await self.rt.store.merchants.webhook_secrets(event.merchant_id)
        except StoreError:
            raise
        except Exception:
            return Sent(url, "bad_secret", error=UNDECRYPTABLE)
        if not secrets:
            return Sent(url, "bad_secret", error="the merchant has no webhook secret")
        gate = self._hosts.setdefault(urlsplit(url).netloc, asyncio.Semaphore(PER_HOST))
        if gate.locked():
            return Sent(url, "deferred")
        async with gate:
            return await self._post(event, url, secrets, livemode)

    async def _settle(self, event: StoredEvent, sent: Sent) -> str:
        """Record the attempt and decide what follows: done, dead, or the next retry."""
        rt, events = self.rt, self.rt.store.events
        now_ms = rt.clock.now_ms()
        if sent.outcome == "deferred":
            await events.retry_at(event, now_ms + 1000)  # not an attempt
            return self._count("deferred")
        attempt = self._attempt(sent.url, sent.status, sent.ms, sent.error)
        count = await events.record_attempt(event, attempt)
        if sent.outcome == "disabled":
            await events.set_state(event, "dead", dead_at_ms=now_ms)
            return self._count("disabled")
        if sent.outcome in ("answered", "failed"):
            rt.metrics.webhook_latency.observe(sent.ms / 1000)
        if sent.status is not None and 200 <= sent.status < 300:
            await events.set_state(event, "delivered")
            return self._count("delivered")
        if sent.status == 410:
            await events.endpoints.disable(event.merchant_id, sent.url, now_ms, event.id)
            log.warning(
                "merchant %s endpoint answered 410: disabled %s",
                event.merchant_id,
                shown_url(sent.url),
            )
            await events.set_state(event, "dead", dead_at_ms=now_ms)
            rt.metrics.webhook_dead.inc()
            return self._count("gone")
        schedule = rt.settings.webhook_schedule
        series = count - event.series_start
        if series >= len(schedule):
            await events.set_state(event, "dead", dead_at_ms=now_ms)
            rt.metrics.webhook_dead.inc()
            log.warning(
                "webhook %s to merchant %s is a dead letter after %d attempts: %s",
                event.id,
                event.merchant_id,
                series,
                sent.error or f"HTTP {sent.status}",
            )
            return self._count("dead")
        delay = schedule[series] * random.uniform(0.9, 1.1)  # noqa: S311 - jitter
        delay = max(delay, min(sent.wait_s, 24 * 3600.0))
        await events.retry_at(event, now_ms + int(delay * 1000))
        return self._count("failed" if sent.outcome == "answered" else sent.outcome)

    async def _post(self, event: StoredEvent, url: str, secrets: list[str], livemode: bool) -> Sent:
        body, headers = signed_request(event.body(), event.id, int(self.rt.clock.now()), secrets)
        session = self._live if livemode else self._sandbox
        # Latency is measured, not decided on: perf_counter, not the clock.
        started = time.perf_counter()
        try:
            async with session.post(url, data=body, headers=headers, allow_redirects=False) as r:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    await r.read()  # the answer's body is not used: only its status counts
                ms = int((time.perf_counter() - started) * 1000)
                wait_s = retry_after(r.headers.get("Retry-After"), self.rt.clock)
                return Sent(url, "answered", status=r.status, wait_s=wait_s, ms=ms)
        except UnsafeTarget as exc:
            return Sent(url, "unsafe", error=f"refused in live mode: {exc}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            ms = int((time.perf_counter() - started) * 1000)
            error = f"{type(exc).__name__}: {exc}".replace(url, shown_url(url))[:200]
            return Sent(url, "failed", error=error, ms=ms)

    def _attempt(self, url: str, status: int | None, ms: int, error: str | None) -> dict[str, Any]:
        return {
            "at": rfc3339(self.rt.clock.utcnow()),
            "url": shown_url(url),
            "status": status,
            "ms": ms,
            "error": error,
        }

    def _count(self, outcome: str) -> str:
        self.rt.metrics.webhook_deliveries.labels(outcome).inc()
        return outcome
