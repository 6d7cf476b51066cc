"""An endpoint disabled by `410 Gone` can be seen and enabled again: merchant API, admin API
and the CLI (as a real subprocess), against a real router, receiver and Redis."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from payrouter_sdk import AsyncClient, NotFoundError
from tests.e2e.conftest import ADMIN_TOKEN, Router, Simulator, eventually
from tests.e2e.test_webhooks import Receiver, paid_payment, start_receiver

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
async def receiver(serving: list[web.AppRunner]) -> Receiver:
    return await start_receiver(serving)


async def payrouter(redis_url: str, *args: str) -> tuple[int, str, str]:
    """Run the `payrouter` command; returns (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("payrouter")),
        *args,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PAYROUTER_REDIS_URL": redis_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def state_of(router: Router, evt_id: str, wanted: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        _, found, _ = await router.request("GET", f"/v1/events/{evt_id}")
        return found if found["delivery"]["state"] == wanted else None

    result: dict[str, Any] = await eventually(check)
    return result


async def gone(
    router: Router, simulator: Simulator, http: aiohttp.ClientSession, receiver: Receiver
) -> str:
    """A payment whose webhook is answered 410: its event id, once dead."""
    receiver.script = [(410, {})]
    await paid_payment(router, simulator, http, receiver.url)
    _, listed, _ = await router.request("GET", "/v1/events")
    evt_id = str(listed["data"][0]["id"])
    await state_of(router, evt_id, "dead")
    return evt_id


async def test_disabled_endpoint_listed_enabled_and_its_dead_letter_resent(
    router: Router, simulator: Simulator, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    evt_id = await gone(router, simulator, http, receiver)
    status, listed, _ = await router.request("GET", "/v1/webhook_endpoints/disabled")
    assert status == 200, listed
    assert listed["object"] == "list"
    [endpoint] = listed["data"]
    assert endpoint["object"] == "webhook_endpoint"
    assert endpoint["id"].startswith("we_")
    assert endpoint["url"] == receiver.url
    assert endpoint["status"] == "disabled"
    assert endpoint["disabled_by_event"] == evt_id
    assert endpoint["disabled_at"] is not None

    # While disabled, the resend is a dead letter again without a request.
    status, _, _ = await router.request("POST", f"/v1/events/{evt_id}/resend")
    assert status == 200
    shown = await state_of(router, evt_id, "dead")
    assert "disabled" in shown["delivery"]["attempts"][-1]["error"]
    assert len(receiver.received) == 1

    path = f"/v1/webhook_endpoints/{endpoint['id']}/enable"
    status, enabled, _ = await router.request("POST", path)
    assert status == 200, enabled
    assert enabled == {
        "id": endpoint["id"],
        "object": "webhook_endpoint",
        "url": receiver.url,
        "status": "enabled",
        "disabled_at": None,
        "disabled_by_event": None,
    }
    status, again, _ = await router.request("POST", path)
    assert status == 404
    assert again["error"]["code"] == "resource_missing"
    _, listed, _ = await router.request("GET", "/v1/webhook_endpoints/disabled")
    assert listed["data"] == []

    status, _, _ = await router.request("POST", f"/v1/events/{evt_id}/resend")
    assert status == 200
    await state_of(router, evt_id, "delivered")
    assert receiver.ids() == [evt_id, evt_id]


async def test_sdk_lists_and_enables(
    router: Router, simulator: Simulator, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    evt_id = await gone(router, simulator, http, receiver)
    async with AsyncClient(api_key=router.secret, base_url=router.url) as client:
        [endpoint] = (await client.webhook_endpoints.list_disabled()).data
        assert (endpoint.url, endpoint.status, endpoint.disabled_by_event) == (
            receiver.url,
            "disabled",
            evt_id,
        )
        enabled = await client.webhook_endpoints.enable(endpoint.id)
        assert (enabled.id, enabled.status) == (endpoint.id, "enabled")
        assert (await client.webhook_endpoints.list_disabled()).data == []
        with pytest.raises(NotFoundError):
            await client.webhook_endpoints.enable(endpoint.id)
        await client.events.resend(evt_id)
    await state_of(router, evt_id, "delivered")


async def test_admin_api_lists_and_enables(
    router: Router, simulator: Simulator, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    evt_id = await gone(router, simulator, http, receiver)
    base = f"{router.url}/admin/merchants/{router.merchant_id}/webhook-endpoints"
    async with http.get(f"{base}/disabled", headers=ADMIN) as resp:
        assert resp.status == 200
        [endpoint] = (await resp.json())["data"]
    assert (endpoint["url"], endpoint["disabled_by_event"]) == (receiver.url, evt_id)
    async with http.post(f"{base}/{endpoint['id']}/enable", headers=ADMIN) as resp:
        assert resp.status == 200
        assert (await resp.json())["status"] == "enabled"
    async with http.get(f"{base}/disabled", headers=ADMIN) as resp:
        assert (await resp.json())["data"] == []
    for method, url in [
        ("POST", f"{base}/{endpoint['id']}/enable"),
        ("POST", f"{base}/we_nonsense/enable"),
        ("GET", f"{router.url}/admin/merchants/mch_nobody/webhook-endpoints/disabled"),
    ]:
        async with http.request(method, url, headers=ADMIN) as resp:
            assert resp.status == 404, url
    async with http.get(f"{base}/disabled") as resp:
        assert resp.status in (401, 403)


async def test_cli_lists_and_enables_by_url(
    router: Router,
    simulator: Simulator,
    http: aiohttp.ClientSession,
    receiver: Receiver,
    redis_url: str,
) -> None:
    mch = router.merchant_id
    code, out, _ = await payrouter(redis_url, "merchants", "webhook-endpoints", mch)
    assert (code, out.strip()) == (0, "no disabled webhook endpoints")

    evt_id = await gone(router, simulator, http, receiver)
    code, out, err = await payrouter(redis_url, "merchants", "webhook-endpoints", mch, "--json")
    assert code == 0, err
    [endpoint] = json.loads(out)
    assert (endpoint["url"], endpoint["disabled_by_event"]) == (receiver.url, evt_id)
    code, out, _ = await payrouter(redis_url, "merchants", "webhook-endpoints", mch)
    assert endpoint["id"] in out
    assert receiver.url in out

    code, out, err = await payrouter(
        redis_url, "merchants", "enable-endpoint", mch, receiver.url, "--json"
    )
    assert code == 0, err
    assert json.loads(out)["status"] == "enabled"
    _, listed, _ = await router.request("GET", "/v1/webhook_endpoints/disabled")
    assert listed["data"] == []

    code, _, err = await payrouter(redis_url, "merchants", "enable-endpoint", mch, receiver.url)
    assert code == 1
    assert "is not a disabled webhook endpoint" in err
    assert "Traceback" not in err
    code, _, err = await payrouter(redis_url, "merchants", "webhook-endpoints", "mch_nobody0000")
    assert code == 1
    assert "no merchant mch_nobody0000" in err
