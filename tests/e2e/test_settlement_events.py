"""`settlement.created` end to end: `payrouter settle run` (a real process) writes the event
into the outbox, the router's dispatcher delivers it signed to the merchant's endpoint, a
second run sends nothing again, and a run whose Redis is down leaves the event to the next."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from router.api.middleware import RUNTIME
from router.app import RECORD
from router.record.settlements import recorded_events
from router.store import keys
from tests.e2e.conftest import Router, eventually
from tests.e2e.test_webhooks import Receiver, start_receiver
from tests.router.test_cli import payrouter
from tests.settle.days import DAY, Run, write_day

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


async def settle(sandbox: Path, redis_url: str) -> tuple[int, dict[str, Any], str]:
    result: subprocess.CompletedProcess[str] = await asyncio.to_thread(
        payrouter,
        "settle",
        "run",
        "--date",
        DAY,
        "--json",
        "--sandbox-dir",
        str(sandbox),
        env={"PAYROUTER_REDIS_URL": redis_url},
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout), result.stderr


async def test_settlement_created_is_delivered_once(
    router: Router,
    redis_url: str,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    receiver: Receiver = await start_receiver(serving)
    store = router.app[RUNTIME].store
    shop, issued = await store.merchants.create("Settled shop", notify_url=receiver.url)
    day = Run("wechat_main")
    paid = day.pay(shop.id, 10_000, coupon=100, fee=59)
    day.refund(paid, 2500, coupon=25, fee=-15)
    async with router.app[RECORD].engine.begin() as conn:
        await write_day(conn, DAY, [day])
    sandbox = tmp_path / "sandbox"

    # Redis down: the settlement is made, its event is left for the next run.
    code, out, err = await settle(sandbox, UNREACHABLE_REDIS)
    assert code == 1
    (made,) = out["settlements"]
    assert made["created"] is True and out["events_sent"] == []
    assert "PAYROUTER_REDIS_URL" in out["events_error"]
    assert "settlement.created not sent" in err
    assert receiver.received == []

    code, out, _ = await settle(sandbox, redis_url)
    assert code == 0, out
    assert out["settlements"][0]["created"] is False
    (evt_id,) = out["events_sent"]

    await eventually(lambda: _some(receiver.received))
    _, headers, body = receiver.received[0]
    secret = (await store.merchants.webhook_secrets(shop.id))[0]
    event = Webhook(secret).verify(body, headers)
    assert (event["id"], event["type"]) == (evt_id, "settlement.created")
    data = event["data"]
    assert (data["id"], data["object"], data["day"]) == (made["id"], "settlement", DAY)
    assert (data["gross"], data["refunds"], data["discounts"], data["fees"]) == (
        10_000,
        2500,
        75,
        44,
    )
    assert data["net"] == made["net"] == 10_000 - 2500 - 75 - 44

    auth = {"Authorization": f"Bearer {issued.secret}"}

    async def delivered() -> dict[str, Any] | None:
        async with http.get(f"{router.url}/v1/events/{evt_id}", headers=auth) as resp:
            found: dict[str, Any] = await resp.json()
        return found if found.get("delivery", {}).get("state") == "delivered" else None

    await eventually(delivered)
    code, again, _ = await settle(sandbox, redis_url)
    assert (code, again["events_sent"]) == (0, [])
    async with http.get(f"{router.url}/v1/events?type=settlement.created", headers=auth) as resp:
        listed = await resp.json()
    assert [e["id"] for e in listed["data"]] == [evt_id]
    assert len(receiver.received) == 1

    # An event that left Redis (retention) is found in the record: still not sent again.
    async def recorded() -> bool | None:
        async with router.app[RECORD].engine.connect() as conn:
            return True if await recorded_events(conn, [evt_id]) else None

    await eventually(recorded)
    await store.redis.delete(keys.event(evt_id))
    code, after_retention, _ = await settle(sandbox, redis_url)
    assert (code, after_retention["events_sent"]) == (0, [])


async def _some(items: list[Any]) -> bool | None:
    return True if items else None
