"""Events and webhooks end to end: the router delivers to a receiver on loopback, the SDK's
`Webhook` verifies what arrives, and the events API shows the delivery."""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from payrouter_sdk import AsyncClient, Event, Payment, Webhook
from router.api.middleware import RUNTIME
from tests.conftest import loopback_socket, serve, url_of
from tests.e2e.conftest import Router, Simulator, eventually
from tests.sdk.conftest import create_qr, pay_at_simulator


@dataclass
class Receiver:
    """A merchant's webhook endpoint: keeps the raw body and headers of each delivery."""

    url: str = ""
    received: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((await request.read(), dict(request.headers)))
        return web.Response(status=204)

    async def wait_for(self, count: int) -> list[tuple[bytes, dict[str, str]]]:
        async def enough() -> list[tuple[bytes, dict[str, str]]] | None:
            return self.received if len(self.received) >= count else None

        return await eventually(enough)


@pytest.fixture
async def receiver(serving: list[web.AppRunner]) -> Receiver:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/hooks", found.handle)
    sock = loopback_socket()
    serving.append(await serve(app, sock))
    found.url = url_of(sock) + "/hooks"
    return found


async def paid(
    client: AsyncClient, simulator: Simulator, http: aiohttp.ClientSession, receiver: Receiver
) -> Payment:
    payment = await create_qr(client, notify_url=receiver.url)
    return await pay_at_simulator(client, simulator, http, payment)


async def test_webhook_verified_and_events_api(
    router: Router,
    client: AsyncClient,
    simulator: Simulator,
    http: aiohttp.ClientSession,
    receiver: Receiver,
) -> None:
    payment = await paid(client, simulator, http, receiver)
    secrets = await router.app[RUNTIME].store.merchants.webhook_secrets(router.merchant_id)
    (body, headers), *_ = await receiver.wait_for(1)
    event = Webhook(secrets).verify(body, headers)
    assert event.type == "payment.succeeded"
    assert isinstance(event.data_object, Payment)
    assert event.data_object.id == payment.id

    async def delivered() -> Event | None:
        found = await client.events.get(event.id)
        return found if found.delivery and found.delivery.state == "delivered" else None

    shown = await eventually(delivered)
    assert shown.delivery is not None
    assert [a.status for a in shown.delivery.attempts] == [204]
    assert shown.data == event.data
    page = await client.events.list(type="payment.succeeded")
    assert [e.id for e in page.data] == [event.id]
    assert [e.id async for e in client.events.auto_paging_iter(limit=1)] == [event.id]

    resent = await client.events.resend(event.id)
    assert resent.id == event.id
    (again, again_headers) = (await receiver.wait_for(2))[1]
    assert again_headers["webhook-id"] == event.id
    assert Webhook(secrets).verify(again, again_headers).id == event.id


async def test_rotated_secret_both_verify(
    router: Router,
    client: AsyncClient,
    simulator: Simulator,
    http: aiohttp.ClientSession,
    receiver: Receiver,
) -> None:
    merchants = router.app[RUNTIME].store.merchants
    (old,) = await merchants.webhook_secrets(router.merchant_id)
    new = await merchants.rotate_webhook_secret(router.merchant_id, grace_s=3600)
    await paid(client, simulator, http, receiver)
    (body, headers), *_ = await receiver.wait_for(1)
    assert len(headers["webhook-signature"].split()) == 2
    for secrets in ([old], [new], [new, old]):
        assert Webhook(secrets).verify(body, headers).type == "payment.succeeded"
