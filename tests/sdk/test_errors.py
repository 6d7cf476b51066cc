"""Typed errors from a live router, and from no router at all."""

from __future__ import annotations

import socket

import pytest

from payrouter_sdk import (
    APIConnectionError,
    AsyncClient,
    AuthenticationError,
    IdempotencyError,
    InvalidRequestError,
    PayrouterError,
)
from tests.e2e.conftest import Router
from tests.sdk.conftest import order_id


async def test_invalid_request_names_the_field(client: AsyncClient) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await client.payments.create(
            amount=0, merchant_order_id=order_id(), description="Zero", method="qr"
        )
    error = caught.value
    assert (error.status, error.type, error.param) == (400, "invalid_request_error", "amount")
    assert error.code == "parameter_invalid"
    assert error.request_id and error.request_id.startswith("req_")
    assert "amount" in str(error) and error.request_id in str(error)


async def test_bad_key_is_an_authentication_error(router: Router) -> None:
    async with AsyncClient(api_key="sk_test_not_a_real_key", base_url=router.url) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.payments.list()
    error = caught.value
    assert (error.status, error.type, error.code) == (
        401,
        "authentication_error",
        "invalid_api_key",
    )
    assert error.param == "Authorization"
    assert error.request_id


async def test_same_key_other_body_is_an_idempotency_error(client: AsyncClient) -> None:
    key = f"key-{order_id()}"
    await client.payments.create(
        amount=100, merchant_order_id=order_id(), description="A", method="qr", idempotency_key=key
    )
    with pytest.raises(IdempotencyError) as caught:
        await client.payments.create(
            amount=200,
            merchant_order_id=order_id(),
            description="B",
            method="qr",
            idempotency_key=key,
        )
    assert (caught.value.status, caught.value.code) == (422, "idempotency_key_reused")
    assert caught.value.param == "Idempotency-Key"


async def test_nothing_listening_is_a_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with AsyncClient(api_key="sk_test_x", base_url=f"http://127.0.0.1:{port}") as client:
        client.initial_retry_delay = 0.01
        with pytest.raises(APIConnectionError) as caught:
            await client.payments.get("pay_x")
    assert caught.value.status is None
    assert isinstance(caught.value, PayrouterError)


def test_constructor_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="api_key"):
        AsyncClient(api_key="", base_url="http://127.0.0.1:8080")
    with pytest.raises(ValueError, match="base_url"):
        AsyncClient(api_key="sk_test_x", base_url="127.0.0.1:8080")
    with pytest.raises(ValueError, match="max_retries"):
        AsyncClient(api_key="sk_test_x", base_url="http://127.0.0.1:8080", max_retries=-1)
