"""Builds the router's aiohttp application: routes, middlewares, start-up and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from router import logs
from router.api import (
    admin,
    admin_ledger,
    admin_recon,
    checkout,
    events,
    links,
    notify,
    payments,
    risk,
    settlements,
)
from router.api.limits import rate_limits, unauthenticated_limits
from router.api.middleware import MAX_BODY, RUNTIME, authentication, idempotency, request_context
from router.api.openapi import build_spec
from router.api.payments import PAYMENTS, REFUNDS
from router.clock import Clock
from router.payments.checkout import CheckoutService
from router.payments.links import LinkService
from router.payments.refunds import RefundService
from router.payments.service import PaymentService
from router.payments.worker import RequeryWorker, check_lease
from router.recon.schedule import DailyReconciliation
from router.record import Record, open_checked, open_record
from router.record.drain import Drainer, set_lag
from router.runtime import RoutingTable, Runtime
from router.settings import Settings
from router.store import Replication, open_store
from router.store.errors import STORE_UNAVAILABLE
from router.webhooks.dispatcher import Dispatcher

log = logging.getLogger("payrouter")
WORKER = web.AppKey("worker", RequeryWorker)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
SESSION = web.AppKey("session", aiohttp.ClientSession)
RECORD = web.AppKey("record", Record)
"""The record: PostgreSQL (PAYROUTER_DATABASE_URL), else the sandbox's embedded database."""
DRAINER = web.AppKey("drainer", Drainer)
RECON = web.AppKey("recon", DailyReconciliation)
EMBEDDED_WARNING = (
    "PAYROUTER_REDIS_URL is not set: using the EMBEDDED in-process store. It is for the sandbox "
    "only: test keys only, one process only, and everything is lost when the process stops."
)


async def build_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    run_worker: bool = True,
    watch_config: bool = True,
    run_dispatcher: bool = True,
    run_drainer: bool = True,
    run_recon: bool = False,
) -> web.Application:
    """Load the routing file, connect the store and build the application.

    Raises `router.routing.config.ConfigError` for an unusable routing file,
    `router.risk.config.RiskError` for an unusable risk file and
    `router.settings.ConfigurationError` for a store or a database that cannot be used, a
    database schema older than the code, or a worker lease too short for the routing file's
    timeouts. `run_recon`: reconcile yesterday every morning at PAYROUTER_RECON_AT (`serve`).
    """
    clock = clock or Clock()
    logs.install([settings.admin_token])
    session = aiohttp.ClientSession()
    try:
        table = RoutingTable.load(settings.routing_path, session, clock)
        check_lease(settings, table.loaded.config)
        replication = None
        if settings.redis_wait_replicas:
            wait_ms = max(1, int(settings.redis_wait_s * 1000))
            replication = Replication(settings.redis_wait_replicas, wait_ms)
        store = await open_store(
            settings.redis_url,
            clock,
            settings.secret_key,
            cache_s=settings.cache_s,
            replication=replication,
        )
    except BaseException:
        await session.close()
        raise
    try:
        record = await _open_record(settings)
    except BaseException:
        await store.close()
        await session.close()
        raise
    loaded = table.loaded
    if store.embedded:
        log.warning(EMBEDDED_WARNING)
    elif settings.secret_key is None:
        log.warning(
            "PAYROUTER_SECRET_KEY is not set: signing secrets are encrypted with a key kept in "
            "the same Redis. Set it (32 bytes, base64) in production."
        )
    try:
        # Loads the risk file: a broken one ends start-up like a broken routing file.
        runtime = Runtime(settings, clock, store, table, session)
        runtime.record = record
    except BaseException:
        await store.close()
        if record is not None:
            await record.close()
        await session.close()
        raise
    service = PaymentService(runtime)
    refunds = RefundService(runtime, service)

    app = web.Application(
        middlewares=[
            request_context,
            unauthenticated_limits,
            authentication,
            rate_limits,
            idempotency,
        ],
        client_max_size=MAX_BODY,
    )
    app[RUNTIME] = runtime
    app[PAYMENTS] = service
    app[REFUNDS] = refunds
    app[SESSION] = session
    app[WORKER] = RequeryWorker(runtime, service, refunds)
    app[RECORD] = record
    payments.add_routes(app)
    checkout.add_routes(app, CheckoutService(service))
    links.add_routes(app, LinkService(service))
    events.add_routes(app)
    settlements.add_routes(app)
    notify.add_routes(app)
    admin.add_routes(app)
    admin_ledger.add_routes(app, RECORD)
    admin_recon.add_routes(app, RECORD)
    risk.add_routes(app)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
    if run_worker:
        app.cleanup_ctx.append(_worker)
    if watch_config:
        app.cleanup_ctx.append(_config_watcher)
    app.cleanup_ctx.append(_risk_lists)
    if run_dispatcher:
        app[DISPATCHER] = Dispatcher(runtime)
        app.cleanup_ctx.append(_dispatcher)
    if run_drainer:
        app[DRAINER] = Drainer(runtime, record)
        app.cleanup_ctx.append(_drainer)
    if run_recon and settings.recon_at is not None:
        app[RECON] = DailyReconciliation(app[WORKER], record)
        app.cleanup_ctx.append(_recon)
    # Cleaned up after the requests in flight have finished and before the store closes
    # (`_close`), so the final flush writes every success this process recorded.
    app.cleanup_ctx.append(_breaker_flusher)
    # Torn down before the flusher (cleanup runs in reverse), so what they record is written.
    app.cleanup_ctx.append(_background)
    app.on_cleanup.append(_close)
    runtime.metrics.config_version.info({"version": loaded.digest})
    log.info(
        "routing config %s (version %s): accounts %s",
        loaded.path,
        loaded.digest,
        ", ".join(loaded.config.accounts),
    )
    return app


async def _open_record(settings: Settings) -> Record:
    """PAYROUTER_DATABASE_URL, opened and checked (a schema older than the code is refused,
    naming `payrouter db migrate`); without it the sandbox's embedded database, migrated."""
    if settings.database_url is not None:
        record = await open_checked(settings.database_url)
        log.info("record: %s", record.description)
        return record
    record = await open_record(None, settings.sandbox_dir)
    try:
        await record.migrate()
    except BaseException:
        await record.close()
        raise
    log.warning(
        "PAYROUTER_DATABASE_URL is not set: the record is the %s (sandbox only)",
        record.description,
    )
    return record


async def _drainer(app: web.Application) -> AsyncIterator[None]:
    """Copy Redis's changes to the record (`router.record.drain`)."""
    drainer = app[DRAINER]
    stop = asyncio.Event()
    task = asyncio.create_task(drainer.run(stop), name="record-drainer")
    yield
    stop.set()
    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
        await asyncio.wait_for(task, timeout=5)
    await drainer.close()


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


async def _dispatcher(app: web.Application) -> AsyncIterator[None]:
    dispatcher = app[DISPATCHER]
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop), name="webhook-dispatcher")
    yield
    stop.set()
    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
        await asyncio.wait_for(task, timeout=5)
    await dispatcher.close()


async def _config_watcher(app: web.Application) -> AsyncIterator[None]:
    """Reload the routing file and the risk file when one changes on disk (polled: no
    platform watcher needed)."""
    rt = app[RUNTIME]
    watched = [(rt.settings.routing_path, rt.reload)]
    if rt.settings.risk_path is not None:
        watched.append((rt.settings.risk_path, rt.risk.reload))

    async def watch() -> None:
        seen = [_stamp(path) for path, _ in watched]
        while True:
            await asyncio.sleep(rt.settings.config_poll_s)
            for i, (path, reload) in enumerate(watched):
                now = _stamp(path)
                if now == seen[i] or now is None:
                    continue
                seen[i] = now
                try:
                    reload()
                except Exception:
                    # A bug, not a bad file (that is refused and logged by `reload`): keep
                    # watching rather than let the task die unseen until shutdown.
                    log.exception("%s reload failed; the version in force stays", path)

    task = asyncio.create_task(watch(), name="config-watcher")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _risk_lists(app: web.Application) -> AsyncIterator[None]:
    """Read the operators' risk lists at start and every `cache_s` (5 s) after: rules test
    them in the process, so a create never waits for them."""
    rt = app[RUNTIME]
    await rt.risk.refresh_lists()
    stop = asyncio.Event()

    async def refresh() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(rt.settings.cache_s, 0.05))
            if stop.is_set():
                return
            try:
                await rt.risk.refresh_lists()
            except Exception as exc:
                # The lists read last stay in force; the next pass tries again.
                log.warning("risk lists not refreshed: %s: %s", type(exc).__name__, exc)

    task = asyncio.create_task(refresh(), name="risk-lists")
    yield
    stop.set()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _recon(app: web.Application) -> AsyncIterator[None]:
    """Reconcile yesterday every morning, in one router process (`router.recon.schedule`)."""
    stop = asyncio.Event()
    task = asyncio.create_task(app[RECON].run(stop), name="daily-reconciliation")
    yield
    stop.set()
    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
        await asyncio.wait_for(task, timeout=5)


async def _worker(app: web.Application) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(app[WORKER].run(stop), name="requery-worker")
    yield
    stop.set()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=5)


async def _breaker_flusher(app: web.Application) -> AsyncIterator[None]:
    """Write the breaker successes this process tallied every `health.flush_s`, and what is
    left at shutdown (`router.routing.health`)."""
    stop = asyncio.Event()
    task = asyncio.create_task(app[RUNTIME].breakers.run(stop), name="breaker-flusher")
    yield
    stop.set()
    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
        await asyncio.wait_for(task, timeout=5)


async def _background(app: web.Application) -> AsyncIterator[None]:
    """End the work requests left running (`Runtime.spawn`) at shutdown."""
    yield
    await app[RUNTIME].stop_background()


async def _close(app: web.Application) -> None:
    await app[SESSION].close()
    await app[RUNTIME].store.close()
    await app[RECORD].close()


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    store_ok = await rt.store.ping()
    body = {
        "status": "ready" if store_ok else "unavailable",
        "store": "embedded" if rt.store.embedded else ("ok" if store_ok else "unreachable"),
        "config_version": rt.config.digest,
    }
    return web.json_response(body, status=200 if store_ok else 503)


async def metrics(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    # Health, breaker and queue gauges come from the state every process shares, read at
    # scrape time. An unreachable store must not hide the rest: the scrape still answers,
    # with `payrouter_store_up 0` (alerted on) and those gauges as last read.
    try:
        admin.set_gauges(rt, await admin.channel_health(rt))
        await admin.set_webhook_gauges(rt)
        await set_lag(rt)
    except STORE_UNAVAILABLE as exc:
        rt.metrics.store_up.set(0)
        log.warning("metrics: store unreachable: %s: %s", type(exc).__name__, exc)
    else:
        rt.metrics.store_up.set(1)
    registry = rt.metrics.registry
    return web.Response(
        body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(build_spec())
