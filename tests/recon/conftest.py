"""Reconciliation fixtures: the three simulators, a router in front of them (its re-query
worker stopped, so a dropped notification stays a status mismatch until reconciliation asks),
real Redis and the router's embedded record."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select, text

from channels.base import Action
from channels.statement import CHINA_TIME
from router.app import RECORD
from router.record.schema import payments, refunds
from tests.channels.harness import Harness
from tests.e2e.conftest import Router, Simulator, eventually, harnesses, http, routing, start_router  # noqa: F401  (fixtures used here)

Harnesses = tuple[dict[str, Harness], dict[str, Path]]


@pytest.fixture
async def rr(
    redis_url: str,
    harnesses: Harnesses,  # noqa: F811
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,  # noqa: F811
) -> Router:
    """A router with one account per wallet (`<wallet>_main`), its worker stopped."""
    found, folders = harnesses
    for h in found.values():
        await h.set_faults({"refund_delay_ms": 0})
    placeholder = Simulator(url="", sandbox=None)  # type: ignore[arg-type]
    return await start_router(
        redis_url, placeholder, tmp_path, serving, http, config_text=routing(found, folders)
    )


def today() -> date:
    return datetime.now(CHINA_TIME).date()


def action_of(payment: dict[str, Any]) -> Action:
    raw = payment["action"]
    return Action(
        type=raw["type"],
        qr_code=raw.get("qr_code"),
        url=raw.get("url"),
        fields=raw.get("fields"),
        params=raw.get("params"),
    )


async def paid(r: Router, h: Harness, amount: int) -> dict[str, Any]:
    """A payment through the router, paid by the buyer, succeeded in Redis."""
    status, created = await r.create(wallet=h.name, amount=amount)
    assert status == 201, created
    await h.pay(action_of(created))
    return await r.wait_status(created["id"], "succeeded")


async def refunded(r: Router, pay_id: str, amount: int) -> dict[str, Any]:
    status, made, _ = await r.request(
        "POST", f"/v1/payments/{pay_id}/refunds", json={"amount": amount}
    )
    assert status == 201, made

    async def done() -> dict[str, Any] | None:
        _, found, _ = await r.request("GET", f"/v1/refunds/{made['id']}")
        return found if found["status"] == "succeeded" else None

    return await eventually(done)


async def recorded(r: Router, ident: str, status: str = "succeeded") -> None:
    """Wait until the drainer wrote payment or refund `ident` with `status`."""
    table = refunds if ident.startswith("re_") else payments

    async def check() -> bool | None:
        async with r.app[RECORD].engine.connect() as conn:
            found = (await conn.execute(select(table.c.status).where(table.c.id == ident))).scalar()
        return True if found == status else None

    await eventually(check)


async def sql(r: Router, statement: str, **params: Any) -> None:
    async with r.app[RECORD].engine.begin() as conn:
        await conn.execute(text(statement), params)


Control = Callable[[Harness, str, dict[str, Any]], Awaitable[dict[str, Any]]]


@pytest.fixture
def control(http: aiohttp.ClientSession) -> Control:  # noqa: F811
    """The simulators' statement control plane (`/sim/statement/...`)."""

    async def call(h: Harness, path: str, body: dict[str, Any]) -> dict[str, Any]:
        method = "PUT" if path == "fee_rate" else "POST"
        async with http.request(method, f"{h.sim_url}/sim/statement/{path}", json=body) as r:
            data: dict[str, Any] = await r.json()
            assert r.status == 200, data
            return data

    return call
