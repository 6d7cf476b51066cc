"""A scripted API server on loopback for SDK tests: each request gets the next scripted
answer (a response, a dropped connection, or a hang), then a payment."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from payrouter_sdk import AsyncClient
from tests.conftest import loopback_socket, serve, url_of

PAYMENT: dict[str, Any] = {
    "id": "pay_0123456789abcdef",
    "object": "payment",
    "merchant_order_id": "A1",
    "amount": 1999,
    "currency": "CNY",
    "method": "qr",
    "wallet": "wechat",
    "channel": "wechat_main",
    "status": "pending",
    "action": {"type": "qr_code", "qr_code": "weixin://wxpay/bizpayurl?pr=x"},
    "description": "Demo",
    "routing": {"rule": "default", "attempts": []},
    "created_at": "2025-06-15T15:06:00Z",
    "livemode": False,
}
SECRET = "sk_test_retries"


def error(status: int, type_: str, code: str, **extra: Any) -> web.Response:
    body = {"error": {"type": type_, "code": code, "message": code, "param": None} | extra}
    headers = {"X-Request-Id": f"req_{code}"}
    return web.json_response(body, status=status, headers=headers)


def in_use(retry_after: str) -> web.Response:
    response = error(409, "idempotency_error", "idempotency_key_in_use")
    response.headers["Retry-After"] = retry_after
    return response


def unavailable(retry_after: str | None = None) -> web.Response:
    response = error(503, "api_error", "overloaded")
    if retry_after is not None:
        response.headers["Retry-After"] = retry_after
    return response


@dataclass
class Seen:
    at: float
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Scripted:
    """Answers each request with the next scripted step, then with a payment.

    A step is a response, "reset" (drop the connection), "truncate" (send the start of a
    body announced longer, then drop the connection) or "hang" (answer only when released).
    """

    url: str = ""
    script: list[web.Response | str] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        seen = Seen(time.monotonic(), request.method, request.raw_path, dict(request.headers), body)
        self.seen.append(seen)
        step = self.script.pop(0) if self.script else "ok"
        if step == "reset":
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        if step == "truncate":
            partial = web.StreamResponse(headers={"Content-Length": "1000"})
            partial.content_type = "application/json"
            await partial.prepare(request)
            await partial.write(b'{"id": "pay_')
            assert request.transport is not None
            request.transport.abort()
            return partial
        if step == "hang":
            await self.release.wait()
        if isinstance(step, web.Response):
            return step
        return web.json_response(PAYMENT, status=201 if request.method == "POST" else 200)

    def keys(self) -> list[str | None]:
        return [s.headers.get("Idempotency-Key") for s in self.seen]


@pytest.fixture
async def server(serving: list[web.AppRunner]) -> AsyncIterator[Scripted]:
    scripted = Scripted()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", scripted.handle)
    sock = loopback_socket()
    serving.append(await serve(app, sock))
    scripted.url = url_of(sock)
    yield scripted
    scripted.release.set()


def client_of(server: Scripted, **options: Any) -> AsyncClient:
    client = AsyncClient(api_key=SECRET, base_url=server.url, **options)
    client.initial_retry_delay = 0.01
    return client


async def create(client: AsyncClient, **options: Any) -> Any:
    async with client:
        return await client.payments.create(
            amount=1999, merchant_order_id="A1", description="Demo", method="qr", **options
        )
