"""Merchant webhooks end to end: real receivers on loopback, real Redis, real simulator.

Signatures are checked with the Standard Webhooks reference library (`standardwebhooks`).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from router.api.middleware import RUNTIME
from router.webhooks.dispatcher import SafeResolver, UnsafeTarget
from tests.conftest import loopback_socket, serve, url_of
from tests.e2e.conftest import (
    ADMIN_TOKEN,
    FAST_WEBHOOKS,
    Router,
    Simulator,
    eventually,
    routing_yaml,
    sim_json,
    start_router,
)

pytestmark = pytest.mark.every_topology

FAST = FAST_WEBHOOKS


@dataclass
class Receiver:
    """A merchant's webhook endpoint: records what arrives, answers as scripted."""

    url: str = ""
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    hang: float = 0.0
    received: list[tuple[float, dict[str, str], bytes]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append((time.monotonic(), dict(request.headers), body))
        if self.hang:
            await asyncio.sleep(self.hang)
        status, headers = self.script.pop(0) if self.script else (200, {})
        return web.Response(status=status, headers=headers, text="ok")

    def ids(self) -> list[str]:
        return [headers["webhook-id"] for _, headers, _ in self.received]


async def start_receiver(serving: list[web.AppRunner], path: str = "/hooks") -> Receiver:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post(path, receiver.handle)
    sock = loopback_socket()
    serving.append(await serve(app, sock))
    receiver.url = url_of(sock) + path
    return receiver


@pytest.fixture
async def receiver(serving: list[web.AppRunner]) -> Receiver:
    return await start_receiver(serving)


@pytest.fixture
def hooked(router: Router) -> Router:
    """The e2e router: its dispatcher retries on the fast schedule `FAST_WEBHOOKS`."""
    return router


async def secret_of(router: Router) -> str:
    return (await router.app[RUNTIME].store.merchants.webhook_secrets(router.merchant_id))[0]


async def paid_payment(
    router: Router, sim: Simulator, http: aiohttp.ClientSession, url: str, amount: int = 1999
) -> dict[str, Any]:
    status, created = await router.create(notify_url=url, amount=amount)
    assert status == 201, created
    await sim_json(http, sim, "POST", "/sim/buyer/pay", {"code": created["action"]["qr_code"]})
    return await router.wait_status(created["id"], "succeeded")


async def test_delivered_signed_and_recorded(
    hooked: Router, simulator: Simulator, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    paid = await paid_payment(hooked, simulator, http, receiver.url)
    await eventually(lambda: _some(receiver.received))
    _, headers, body = receiver.received[0]
    event = Webhook(await secret_of(hooked)).verify(body, headers)
    assert event["type"] == "payment.succeeded"
    assert event["data"]["id"] == paid["id"]
    assert event["data"]["status"] == "succeeded"
    assert event["data"]["amount"] == 1999
    assert "merchant_id" not in event["data"]

    async def delivered() -> dict[str, Any] | None:
        _, found, _ = await hooked.request("GET", f"/v1/events/{event['id']}")
        return found if found["delivery"]["state"] == "delivered" else None

    shown = await delivered_or_fail(delivered)
    assert [a["status"] for a in shown["delivery"]["attempts"]] == [200]
    _, listed, _ = await hooked.request("GET", "/v1/events?type=payment.succeeded")
    assert [e["id"] for e in listed["data"]] == [event["id"]]


async def delivered_or_fail(check: Any) -> dict[str, Any]:
    result: dict[str, Any] = await eventually(check)
    return result


async def _some(items: list[Any], n: int = 1) -> bool | None:
    return True if len(items) >= n else None


async def test_retries_until_healthy_honouring_retry_after(
    hooked: Router, simulator: Simulator, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    receiver.script = [(500, {}), (503, {"Retry-After": "1"}), (200, {})]
    await paid_payment(hooked, simulator, http, receiver.url)
    await eventually(lambda: _some(receiver.received, 3))
    times = [t for t, _, _ in receiver.received]
    assert times[2] - times[1] >= 0.9  # Retry-After: 1 beats the 0.2 s schedule
    assert len(set(receiver.ids())) == 1


async def test_gone_disables_the_endpoint(
    hooked: Router, simulator: Simulator, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    receiver.script = [(410, {})]
    first = await paid_payment(hooked, simulator, http, receiver.url)
    await eventually(lambda: _some(receiver.received))
    await paid_payment(hooked, simulator, http, receiver.url)

    async def both_dead() -> bool | None:
        _, listed, _ = await hooked.request("GET", "/v1/events")
        states = []
        for e in listed["data"]:
            _, one, _ = await hooked.request("GET", f"/v1/events/{e['id']}")
            states.append(one["delivery"]["state"])
        return True if states == ["dead", "dead"] else None

    await eventually(both_dead)
    assert len(receiver.received) == 1
    assert first["id"]


async def test_dead_letter_then_resend(
    hooked: Router, simulator: Simulator, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    receiver.script = [(500, {})] * len(FAST)
    await paid_payment(hooked, simulator, http, receiver.url)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    async def dead() -> list[dict[str, Any]] | None:
        async with http.get(f"{hooked.url}/admin/webhooks/dead", headers=headers) as resp:
            rows: list[dict[str, Any]] = (await resp.json())["data"]
        return rows or None

    rows = await eventually(dead)
    assert rows[0]["attempts"] == len(FAST)
    evt_id = rows[0]["id"]
    status, resent, _ = await hooked.request("POST", f"/v1/events/{evt_id}/resend")
    assert status == 200
    # The dispatcher may deliver it before the resend answer is written.
    assert resent["delivery"]["state"] in ("pending", "delivered")

    async def delivered() -> bool | None:
        _, one, _ = await hooked.request("GET", f"/v1/events/{evt_id}")
        return True if one["delivery"]["state"] == "delivered" else None

    await eventually(delivered)
    assert receiver.ids().count(evt_id) == len(FAST) + 1


async def test_a_hanging_receiver_does_not_delay_others(
    hooked: Router,
    simulator: Simulator,
    http: aiohttp.ClientSession,
    serving: list[web.AppRunner],
) -> None:
    slow = await start_receiver(serving, "/slow")
    fast = await start_receiver(serving, "/fast")
    slow.hang = 1.5
    await paid_payment(hooked, simulator, http, slow.url)
    await eventually(lambda: _some(slow.received))
    await paid_payment(hooked, simulator, http, fast.url)
    await eventually(lambda: _some(fast.received))
    # The fast merchant got its webhook while the slow one's request was still hanging.
    assert fast.received[0][0] - slow.received[0][0] < slow.hang


async def test_two_dispatchers_share_the_stream(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
    receiver: Receiver,
    hooked: Router,
) -> None:
    (tmp_path / "second").mkdir()
    second = await start_router(
        redis_url,
        simulator,
        tmp_path / "second",
        serving,
        http,
        merchant=(hooked.merchant_id, hooked.key_id, hooked.secret),
    )
    for _ in range(6):
        await paid_payment(second, simulator, http, receiver.url)
    await eventually(lambda: _some(receiver.received, 6))
    await asyncio.sleep(0.3)
    assert len(receiver.ids()) == len(set(receiver.ids())) == 6


async def test_refund_events(
    hooked: Router, simulator: Simulator, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    paid = await paid_payment(hooked, simulator, http, receiver.url)
    status, refund, _ = await hooked.request(
        "POST", f"/v1/payments/{paid['id']}/refunds", json={"amount": 500}
    )
    assert status == 201, refund

    async def refunded() -> dict[str, Any] | None:
        for _, headers, body in receiver.received:
            event = Webhook(await secret_of(hooked)).verify(body, headers)
            if event["type"] == "refund.succeeded":
                return dict(event)
        return None

    event = await eventually(refunded)
    assert event["data"]["id"] == refund["id"]
    assert event["data"]["amount"] == 500


async def test_live_mode_refuses_private_targets() -> None:
    resolver = SafeResolver()
    try:
        with pytest.raises(UnsafeTarget):
            await resolver.resolve("localhost", 80)
    finally:
        await resolver.close()


async def test_rotation_sends_both_signatures(
    hooked: Router, simulator: Simulator, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    merchants = hooked.app[RUNTIME].store.merchants
    old = await secret_of(hooked)
    new = await merchants.rotate_webhook_secret(hooked.merchant_id, grace_s=3600)
    await paid_payment(hooked, simulator, http, receiver.url)
    await eventually(lambda: _some(receiver.received))
    _, headers, body = receiver.received[0]
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(body, headers)["type"] == "payment.succeeded"


async def test_live_mode_refuses_private_notify_urls_at_create(
    redis_url: str,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    live_config = routing_yaml(simulator).replace(
        "    type: wechat\n", "    type: wechat\n    livemode: true\n"
    )
    router = await start_router(
        redis_url, simulator, tmp_path, serving, http, config_text=live_config
    )
    _, issued = await router.app[RUNTIME].store.merchants.create("Live shop", mode="live")
    headers = {"Authorization": f"Bearer {issued.secret}"}
    for index, (url, reason) in enumerate(
        [
            ("http://shop.example/hooks", "https"),
            ("https://127.0.0.1/hooks", "public"),
            ("https://localhost/hooks", "public"),
            ("https://10.1.2.3/hooks", "public"),
            ("https://100.64.0.1/hooks", "public"),
            ("https://[::1/hooks", "valid URL"),
        ]
    ):
        body = {
            "amount": 100,
            "merchant_order_id": f"L-{index}",
            "description": "live",
            "method": "qr",
            "notify_url": url,
        }
        async with http.post(f"{router.url}/v1/payments", json=body, headers=headers) as resp:
            err = await resp.json()
            assert resp.status == 400, (url, err)
            assert err["error"]["param"] == "notify_url"
            assert reason in err["error"]["message"]
