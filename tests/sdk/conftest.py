"""SDK fixtures: the SDK against a live router and WeChat Pay simulator on loopback ports,
started by the end-to-end suite's own fixtures (re-exported here), sharing a real Redis."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from payrouter_sdk import AsyncClient, Payment
from tests.e2e import conftest as e2e
from tests.e2e.conftest import Router, Simulator, eventually, sim_json
from tests.sdk import scripted

http = e2e.http
simulator = e2e.simulator
router = e2e.router
server = scripted.server


@pytest.fixture
async def client(router: Router) -> AsyncIterator[AsyncClient]:
    """A bearer-key client of the live router."""
    async with AsyncClient(api_key=router.secret, base_url=router.url) as sdk:
        yield sdk


def order_id() -> str:
    return f"SDK{time.monotonic_ns()}"


async def create_qr(client: AsyncClient, amount: int = 1999, **fields: Any) -> Payment:
    return await client.payments.create(
        amount=amount, merchant_order_id=order_id(), description="SDK test", method="qr", **fields
    )


async def pay_at_simulator(
    client: AsyncClient, simulator: Simulator, http: aiohttp.ClientSession, payment: Payment
) -> Payment:
    """The buyer scans and pays; returns the payment once the router has it `succeeded`."""
    assert payment.action is not None and payment.action.qr_code is not None
    status, body = await sim_json(
        http, simulator, "POST", "/sim/buyer/pay", {"code": payment.action.qr_code}
    )
    assert status < 300, body
    return await wait_status(client, payment.id, "succeeded")


async def wait_status(client: AsyncClient, payment_id: str, wanted: str) -> Payment:
    async def check() -> Payment | None:
        found = await client.payments.get(payment_id)
        return found if found.status == wanted else None

    return await eventually(check)
