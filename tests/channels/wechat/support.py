"""Helpers the WeChat suites share: orders as the router builds them, and the `/sim/` plane."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import aiohttp

from channels.base import CreateOrder, Method, OrderRef, RefundOrder
from tests.channels.conftest import WeChatSim

OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
AUTH_CODE = "134567890123456789"
"""A payment code the simulator pays at once."""
PASSWORD_AUTH_CODE = "150000000000000042"
"""A payment code for which the simulated buyer must enter a password."""

T = TypeVar("T")


def new_order(
    method: Method = "qr",
    notify_url: str = "http://127.0.0.1:9/notify",
    *,
    amount: int = 1999,
    auth_code: str = AUTH_CODE,
) -> CreateOrder:
    return CreateOrder(
        order_no=f"pay_{secrets.token_hex(10)}",
        created_at=datetime.now(UTC),
        amount=amount,
        currency="CNY",
        method=method,
        description="Sandbox T-shirt",
        notify_url=notify_url,
        expires_at=datetime.now(UTC) + timedelta(minutes=30),
        client_ip="203.0.113.7",
        payer_id=OPENID,
        auth_code=auth_code,
    )


def ref(order: CreateOrder | str) -> OrderRef:
    """How the router names an order it created (any name for one it never did)."""
    if isinstance(order, str):
        return OrderRef(order, datetime.now(UTC))
    return OrderRef(order.order_no, order.created_at)


def refund_of(
    order: CreateOrder,
    amount: int | None = None,
    *,
    notify_url: str = "http://127.0.0.1:9/notify",
    refund_no: str | None = None,
    reason: str | None = "Sandbox refund",
) -> RefundOrder:
    """A refund of `order` (all of it unless `amount` says otherwise)."""
    return RefundOrder(
        refund_no=refund_no or f"ref_{secrets.token_hex(10)}",
        created_at=datetime.now(UTC),
        payment=ref(order),
        amount=order.amount if amount is None else amount,
        total=order.amount,
        currency=order.currency,
        notify_url=notify_url,
        reason=reason,
    )


async def control(
    session: aiohttp.ClientSession, method: str, url: str, payload: object = None
) -> tuple[int, Any]:
    async with session.request(method, url, json=payload) as response:
        return response.status, await response.json()


async def buyer(
    session: aiohttp.ClientSession, sim: WeChatSim, what: str, code: str
) -> tuple[int, Any]:
    return await control(session, "POST", f"{sim.base_url}/sim/buyer/{what}", {"code": code})


async def set_faults(session: aiohttp.ClientSession, sim: WeChatSim, **faults: object) -> None:
    status, body = await control(session, "PUT", f"{sim.base_url}/sim/faults", faults)
    assert status == 200, body


async def eventually(
    probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout: float = 5.0
) -> T:
    """Call `probe` until `done` holds for its result (for states reached by simulator timers)."""
    async with asyncio.timeout(timeout):
        while True:
            value = await probe()
            if done(value):
                return value
            await asyncio.sleep(0.005)
