"""A store that goes away under a running router: `503 store_unavailable` with `Retry-After`
on the API and on channel callbacks (so the channel retries), never a 500; and once the store
is back, the same requests go through.

The router and the WeChat Pay simulator run in process; Redis is a private redis-server with
an append-only file, stopped and started again on the same port in the middle of each test.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from router.app import DISPATCHER, WORKER
from tests.conftest import loopback_socket
from tests.e2e.conftest import (
    FAST_WORKERS,
    Router,
    Simulator,
    eventually,
    sim_json,
    start_router,
)
from tests.e2e.test_notifications import notification, post, transaction
from tests.e2e.test_webhooks import _some, secret_of, start_receiver


class RedisProcess:
    """A redis-server of its own that a test can stop and start again, keeping its data."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        with loopback_socket() as probe:
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        exe = shutil.which("redis-server")
        assert exe is not None
        self.proc = await asyncio.create_subprocess_exec(
            *[
                exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.workdir),
            ],
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.STDOUT,
        )
        client = aioredis.Redis.from_url(self.url)

        async def answers() -> bool | None:
            try:
                return True if await client.ping() else None
            except aioredis.ConnectionError:
                return None

        try:
            await eventually(answers)
        finally:
            await client.aclose()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await asyncio.wait_for(self.proc.wait(), timeout=10)


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[RedisProcess]:
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = RedisProcess(workdir)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def fragile(
    own_redis: RedisProcess,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> Router:
    """A router on `own_redis`."""
    return await start_router(own_redis.url, simulator, tmp_path, serving, http)


def unavailable(status: int, body: dict[str, object], retry_after: str | None) -> None:
    assert status == 503, body
    assert body["error"] == {
        "type": "api_error",
        "code": "store_unavailable",
        "message": body["error"]["message"],  # type: ignore[index]
        "param": None,
    }
    assert retry_after is not None and int(retry_after) >= 1


async def test_the_api_answers_503_while_the_store_is_down(
    fragile: Router, own_redis: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    status, created = await fragile.create(merchant_order_id="DOWN-1")
    assert status == 201, created
    await own_redis.stop()

    key = {"Idempotency-Key": "down-2"}
    body = {"amount": 100, "merchant_order_id": "DOWN-2", "description": "x", "method": "qr"}
    for method, path, json, headers in [
        ("GET", f"/v1/payments/{created['id']}", None, None),
        ("GET", "/v1/payments", None, None),
        ("POST", "/v1/payments", body, key),
        ("POST", f"/v1/payments/{created['id']}/close", None, None),
    ]:
        status, answer, got = await fragile.request(method, path, json=json, headers=headers)
        unavailable(status, answer, got.get("Retry-After"))
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]

    await own_redis.start()
    status, again, _ = await fragile.request("POST", "/v1/payments", json=body, headers=key)
    assert status == 201, again
    assert (await fragile.payment(created["id"]))["status"] == "pending"


async def test_a_notification_is_not_acknowledged_while_the_store_is_down(
    fragile: Router, own_redis: RedisProcess, simulator: Simulator
) -> None:
    _, created = await fragile.create(amount=500)
    body, headers = notification(simulator, transaction(simulator, created["id"], 500))
    await own_redis.stop()
    async with fragile.http.post(
        f"{fragile.url}/v1/notify/wechat_main", data=body, headers=headers
    ) as resp:
        answer = await resp.json()
        unavailable(resp.status, answer, resp.headers.get("Retry-After"))

    # The channel tries again later, as WeChat Pay does after any answer but a 2xx. The
    # router's pooled connections to the old server are replaced before use, so the first
    # retry after the restart lands (see router.store.fresh).
    await own_redis.start()
    assert await post(fragile, body, headers) == 200
    assert (await fragile.payment(created["id"]))["status"] == "succeeded"


async def test_requests_in_flight_when_the_store_goes_are_answered(
    fragile: Router, own_redis: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    """Creates under a key keep coming while the store stops: each gets 201 or 503, none a
    500, and nothing logs a traceback."""

    async def create(i: int) -> int:
        status, _, _ = await fragile.request(
            "POST",
            "/v1/payments",
            json={"amount": 100, "merchant_order_id": f"R-{i}", "description": "x", "method": "qr"},
            headers={"Idempotency-Key": f"race-{i}"},
        )
        return status

    stopping = asyncio.create_task(own_redis.stop())
    statuses = [await create(i) for i in range(5)]
    while not stopping.done():
        statuses.append(await create(len(statuses)))
    await stopping
    statuses.append(await create(len(statuses)))
    assert set(statuses) <= {201, 503}, statuses
    assert statuses[-1] == 503
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_background_loops_log_an_outage_in_a_few_lines_and_resume(
    own_redis: RedisProcess,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The re-query worker (polling every 50 ms) and the webhook dispatcher fail many times
    while Redis is down: one line each, no traceback; then one line each on recovery, and the
    payment left to the worker is settled and its webhook delivered."""
    caplog.set_level(logging.INFO)
    receiver = await start_receiver(serving)
    workers = replace(FAST_WORKERS, requery_after_s=60.0)
    r = await start_router(
        own_redis.url,
        simulator,
        tmp_path,
        serving,
        http,
        run_worker=True,
        workers=workers,
        # A delivery cut off by the outage is taken over once idle this long.
        overrides={"webhook_claim_idle_s": 0.5},
    )
    await sim_json(http, simulator, "PUT", "/sim/faults", {"drop_notifications": 100})
    _, created = await r.create(notify_url=receiver.url)
    await sim_json(
        http, simulator, "POST", "/sim/buyer/pay", {"code": created["action"]["qr_code"]}
    )
    worker, dispatcher = r.app[WORKER], r.app[DISPATCHER]
    await own_redis.stop()

    async def failing() -> bool | None:
        return True if worker.outage.failures > 20 and dispatcher.outage.failures > 2 else None

    await eventually(failing)
    while_down = [rec.getMessage() for rec in caplog.records]
    await own_redis.start()
    await eventually(lambda: _nothing_down(worker.outage.down, dispatcher.outage.down))
    r.clock.advance(61)  # the payment is due for a re-query now

    async def settled() -> bool | None:
        status, found, _ = await r.request("GET", f"/v1/payments/{created['id']}")
        assert status == 200, found
        return True if found["status"] == "succeeded" else None

    await eventually(settled)
    await eventually(lambda: _some(receiver.received))
    _, headers, body = receiver.received[0]
    assert Webhook(await secret_of(r)).verify(body, headers)["data"]["id"] == created["id"]

    assert not [rec for rec in caplog.records if rec.exc_info], caplog.text
    for loop in ("re-query worker", "webhook dispatcher"):
        lines = [line for line in while_down if line.startswith(loop)]
        assert len(lines) == 1 and "store unavailable" in lines[0], lines
        # Once back, no loop meets a connection the old server closed (router.store.fresh).
        outages = [m for m in caplog.messages if m.startswith(f"{loop}: store unavailable")]
        assert len(outages) == 1, outages
        assert any(
            rec.getMessage().startswith(f"{loop}: store available again") for rec in caplog.records
        )


async def _nothing_down(*down: bool) -> bool | None:
    return None if any(down) else True
