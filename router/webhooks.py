"""Merchant webhooks: signed per Standard Webhooks, delivered at least once, never lost.

The dispatcher runs in every router process. It reads new events from the merchants' outbox
streams as one consumer of the shared group, takes over entries a dead process left pending,
and claims due retries from the shared schedule (`router.store.events`). Each delivery:

- goes to the payment's `notify_url`, else the merchant's default endpoint;
- is signed with every webhook secret in force (two during a rotation): headers `webhook-id`,
  `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256(id.timestamp.body)> ...`;
- in live mode, refuses targets that resolve to loopback, private, link-local or reserved
  addresses (checked by the resolver at connect time, so DNS cannot swap them in later);
- runs with connect and total timeouts and a per-host concurrency cap, so one slow merchant
  cannot stall deliveries to others;
- 2xx: delivered. 410: the endpoint is disabled for that merchant and the event is dead.
  Anything else: retried on the schedule (`PAYROUTER_WEBHOOK_SCHEDULE`, jittered, never
  sooner than `Retry-After`); after the last attempt the event is a dead letter.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import os
import random
import socket
import time
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from router.clock import rfc3339
from router.runtime import Runtime
from router.store import keys
from router.store.events import StoredEvent
from router.urls import public_address

log = logging.getLogger("payrouter.webhooks")
CONCURRENCY = 64
PER_HOST = 8


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<signature>` for a `whsec_` secret, per the Standard Webhooks spec."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


class UnsafeTarget(aiohttp.ClientError):
    """A live-mode webhook URL that resolves to an address merchants must not reach."""


class SafeResolver(AbstractResolver):
    """Resolves like aiohttp does, then refuses any answer that is not a public address."""

    def __init__(self) -> None:
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        for entry in found:
            if not public_address(entry["host"]):
                raise UnsafeTarget(f"{host} resolves to a non-public address")
        return found

    async def close(self) -> None:
        await self._inner.close()


def retry_after(value: str | None) -> float:
    if not value:
        return 0.0
    if value.isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError):
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    return 0.0


class Dispatcher:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{random.randrange(1 << 30):x}"  # noqa: S311
        self._slots = asyncio.Semaphore(CONCURRENCY)
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._groups: set[str] = set()
        timeout = aiohttp.ClientTimeout(
            total=rt.settings.webhook_timeout_s, sock_connect=rt.settings.webhook_connect_s
        )
        self._sandbox = aiohttp.ClientSession(timeout=timeout)
        self._live = aiohttp.ClientSession(
            timeout=timeout, connector=aiohttp.TCPConnector(resolver=SafeResolver())
        )

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._sandbox.close()
        await self._live.close()

    async def run(self, stop: asyncio.Event) -> None:
        last_sweep = 0.0
        while not stop.is_set():
            try:
                merchants = await self.rt.store.merchants.ids()
                for mch in set(merchants) - self._groups:
                    await self.rt.store.events.ensure_group(mch)
                    self._groups.add(mch)
                if time.monotonic() - last_sweep >= 1.0:
                    last_sweep = time.monotonic()
                    await self._sweep(merchants)
                free = CONCURRENCY - len(self._tasks)
                if free <= 0:
                    await asyncio.sleep(0.05)
                    continue
                entries = await self.rt.store.events.read_new(
                    merchants, self.consumer, count=free, block_ms=200
                )
                for mch, entry_id, evt_id in entries:
                    self._spawn(mch, evt_id, entry_id)
                if not merchants:
                    await asyncio.sleep(0.2)
            except Exception:
                log.exception("webhook dispatch pass failed; retrying")
                await asyncio.sleep(1.0)

    async def _sweep(self, merchants: list[str]) -> None:
        """Due retries, and outbox entries a dead process left unacknowledged."""
        events = self.rt.store.events
        now = self.rt.clock.now_ms()
        idle_ms = int(self.rt.settings.webhook_claim_idle_s * 1000)
        for mch, evt_id in await events.claim_retries(now, 60_000, 100):
            self._spawn(mch, evt_id, None)
        for mch, entry_id, evt_id in await events.claim_stale(
            merchants, self.consumer, idle_ms, 50
        ):
            self._spawn(mch, evt_id, entry_id)

    def _spawn(self, mch: str, evt_id: str, entry_id: str | None) -> None:
        task = asyncio.create_task(self._guarded(mch, evt_id, entry_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, mch: str, evt_id: str, entry_id: str | None) -> None:
        try:
            async with self._slots:
                await self.deliver(mch, evt_id)
            if entry_id is not None:
                await self.rt.store.events.ack(mch, entry_id)
        except Exception:
            # Unacknowledged: another pass (or process) picks it up again.
            log.exception("webhook %s delivery failed unexpectedly", evt_id)

    async def _target(self, event: StoredEvent) -> str | None:
        store = self.rt.store
        url: str | None = None
        if event.type.startswith("payment."):
            url = event.data.get("notify_url")
        else:
            payment = await store.payments.get(event.merchant_id, event.payment_id)
            url = payment.payment.notify_url if payment else None
        if url is None:
            merchant = await store.merchants.get(event.merchant_id)
            url = merchant.notify_url if merchant else None
        return url

    async def deliver(self, mch: str, evt_id: str) -> str:
        """One attempt at one event. Returns the outcome, for metrics and tests."""
        rt, events = self.rt, self.rt.store.events
        event = await events.get(mch, evt_id)
        if event is None or event.state in ("delivered", "dead", "no_endpoint"):
            return "skipped"
        url = await self._target(event)
        if url is None:
            await events.set_state(event, "no_endpoint")
            return self._count("no_endpoint")
        host = urlsplit(url).netloc
        if await rt.store.redis.sismember(keys.disabled_endpoints(mch), url):
            await events.record_attempt(event, self._attempt(url, None, 0, "endpoint disabled"))
            await events.set_state(event, "dead", dead_at_ms=rt.clock.now_ms())
            return self._count("disabled")
        gate = self._hosts.setdefault(host, asyncio.Semaphore(PER_HOST))
        if gate.locked():
            await events.retry_at(event, rt.clock.now_ms() + 1000)  # not an attempt
            return self._count("deferred")
        async with gate:
            status, error, wait_hint, ms = await self._post(event, url)
        count = await events.record_attempt(event, self._attempt(url, status, ms, error))
        rt.metrics.webhook_latency.observe(ms / 1000)
        if status is not None and 200 <= status < 300:
            await events.set_state(event, "delivered")
            return self._count("delivered")
        if status == 410:
            await rt.store.redis.sadd(keys.disabled_endpoints(mch), url)
            log.warning("merchant %s endpoint answered 410: disabled %s", mch, host)
            await events.set_state(event, "dead", dead_at_ms=rt.clock.now_ms())
            rt.metrics.webhook_dead.inc()
            return self._count("gone")
        schedule = rt.settings.webhook_schedule
        series = count - event.series_start
        if series >= len(schedule):
            await events.set_state(event, "dead", dead_at_ms=rt.clock.now_ms())
            rt.metrics.webhook_dead.inc()
            log.warning(
                "webhook %s to merchant %s is a dead letter after %d attempts", evt_id, mch, series
            )
            return self._count("dead")
        delay = schedule[series] * random.uniform(0.9, 1.1)  # noqa: S311 - jitter
        delay = max(delay, min(wait_hint, 24 * 3600.0))
        await events.retry_at(event, rt.clock.now_ms() + int(delay * 1000))
        return self._count("unsafe" if error and "non-public" in error else "failed")

    async def _post(
        self, event: StoredEvent, url: str
    ) -> tuple[int | None, str | None, float, int]:
        secrets = await self.rt.store.merchants.webhook_secrets(event.merchant_id)
        body = json.dumps(event.body(), ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = int(self.rt.clock.now())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "payrouter-webhooks/1",
            "webhook-id": event.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": " ".join(sign(s, event.id, timestamp, body) for s in secrets),
        }
        session = self._live if event.data.get("livemode") else self._sandbox
        started = time.perf_counter()
        try:
            async with session.post(url, data=body, headers=headers, allow_redirects=False) as r:
                await r.read()
                ms = int((time.perf_counter() - started) * 1000)
                return r.status, None, retry_after(r.headers.get("Retry-After")), ms
        except UnsafeTarget as exc:
            return None, str(exc), 0.0, 0
        except (aiohttp.ClientError, TimeoutError) as exc:
            ms = int((time.perf_counter() - started) * 1000)
            return None, f"{type(exc).__name__}: {exc}"[:200], 0.0, ms

    def _attempt(self, url: str, status: int | None, ms: int, error: str | None) -> dict[str, Any]:
        parts = urlsplit(url)
        return {
            "at": rfc3339(self.rt.clock.utcnow()),
            "url": f"{parts.scheme}://{parts.netloc}{parts.path}",
            "status": status,
            "ms": ms,
            "error": error,
        }

    def _count(self, outcome: str) -> str:
        self.rt.metrics.webhook_deliveries.labels(outcome).inc()
        return outcome
