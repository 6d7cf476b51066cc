"""`GET /v1/payments`'s new filters (method, wallet, channel, amount_gte, amount_lte) through a
real router application: malformed values are 400 naming the parameter; well-formed ones are
400 `parameter_unsupported` naming it while the list is served from Redis; the existing
parameters keep working."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from router.api.middleware import RUNTIME
from router.app import build_app
from router.settings import Settings
from tests.router.test_cli import good_routing

__all__ = ["good_routing"]


@pytest.fixture
async def merchant(good_routing: Path) -> AsyncIterator[tuple[TestClient[Any, Any], str]]:
    app = await build_app(
        Settings(routing_path=good_routing),
        run_worker=False,
        watch_config=False,
        run_dispatcher=False,
    )
    _, issued = await app[RUNTIME].store.merchants.create("Shop")
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client, issued.secret
    finally:
        await client.close()


async def get(merchant: tuple[TestClient[Any, Any], str], query: str) -> tuple[int, Any]:
    client, secret = merchant
    response = await client.get(
        f"/v1/payments?{query}", headers={"Authorization": f"Bearer {secret}"}
    )
    return response.status, await response.json()


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("method=cash", "method"),
        ("wallet=paypal", "wallet"),
        ("channel=Not%20A%20Name", "channel"),
        ("amount_gte=0", "amount_gte"),
        ("amount_gte=1.5", "amount_gte"),
        ("amount_lte=-3", "amount_lte"),
        ("amount_lte=99999999999999", "amount_lte"),
        ("amount_gte=500&amount_lte=100", "amount_lte"),
        ("method=qr&method=h5", "method"),
    ],
)
async def test_malformed_filters_name_the_parameter(
    merchant: tuple[TestClient[Any, Any], str], query: str, param: str
) -> None:
    status, body = await get(merchant, query)
    assert status == 400, body
    assert body["error"]["param"] == param
    assert body["error"]["code"] != "parameter_unsupported"


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("method=qr", "method"),
        ("wallet=alipay", "wallet"),
        ("channel=wechat_main", "channel"),
        ("amount_gte=100", "amount_gte"),
        ("status=succeeded&amount_lte=100", "amount_lte"),
    ],
)
async def test_record_filters_are_refused_by_the_redis_listing(
    merchant: tuple[TestClient[Any, Any], str], query: str, param: str
) -> None:
    status, body = await get(merchant, query)
    assert status == 400, body
    assert (body["error"]["code"], body["error"]["param"]) == ("parameter_unsupported", param)
    assert "needs the record" in body["error"]["message"]


async def test_the_existing_parameters_still_list(
    merchant: tuple[TestClient[Any, Any], str],
) -> None:
    status, body = await get(merchant, "status=succeeded&limit=5&method=")
    assert status == 200, body
    assert body["data"] == []


async def test_openapi_documents_the_filters(merchant: tuple[TestClient[Any, Any], str]) -> None:
    client, _ = merchant
    spec = await (await client.get("/openapi.json")).json()
    params = {p["name"]: p for p in spec["paths"]["/v1/payments"]["get"]["parameters"]}
    assert {"method", "wallet", "channel", "amount_gte", "amount_lte"} <= params.keys()
    assert params["amount_gte"]["schema"]["minimum"] == 1
    assert "qr" in params["method"]["schema"]["enum"]
