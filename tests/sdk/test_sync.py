"""The blocking `Client` against a live router (run in a worker thread, so that the test's
event loop keeps serving the router meanwhile)."""

from __future__ import annotations

import asyncio

import pytest

from payrouter_sdk import AuthenticationError, Client, Payment
from tests.e2e.conftest import Router
from tests.sdk.conftest import order_id


def shop(router: Router) -> tuple[Payment, Payment, list[str]]:
    with Client(api_key=router.secret, base_url=router.url) as client:
        created = client.payments.create(
            amount=1999,
            merchant_order_id=order_id(),
            description="Sync",
            method="qr",
            idempotency_key="sync-1",
        )
        found = client.payments.get(created.id)
        walked = [p.id for p in client.payments.auto_paging_iter(limit=1)]
    return created, found, walked


async def test_create_get_and_list(router: Router) -> None:
    created, found, walked = await asyncio.to_thread(shop, router)
    assert found == created
    assert created.status == "pending"
    assert walked == [created.id]


def refused(router: Router) -> AuthenticationError:
    with (
        Client(api_key="sk_test_wrong", base_url=router.url) as client,
        pytest.raises(AuthenticationError) as caught,
    ):
        client.payments.list()
    return caught.value


async def test_errors_cross_the_thread_typed(router: Router) -> None:
    error = await asyncio.to_thread(refused, router)
    assert (error.status, error.code) == (401, "invalid_api_key")


def test_a_closed_client_refuses_calls() -> None:
    client = Client(api_key="sk_test_x", base_url="http://127.0.0.1:1")
    client.close()
    client.close()
    with pytest.raises(RuntimeError, match="closed"):
        client.payments.get("pay_x")
