"""`GET /v1/payments`'s filters (method, wallet, channel, amount_gte, amount_lte) through a
real router application: malformed values are 400 naming the parameter; well-formed ones are
answered from the record, with every filter and a cursor, whether or not Redis still holds
the payments."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from router.api.middleware import RUNTIME
from router.app import build_app
from router.ids import new_id
from router.record.schema import payments
from router.settings import Settings
from tests.record.sample_rows import payment_row, upsert
from tests.router.test_cli import good_routing

__all__ = ["good_routing"]


@pytest.fixture
async def merchant(
    good_routing: Path, tmp_path: Path
) -> AsyncIterator[tuple[TestClient[Any, Any], str]]:
    app = await build_app(
        Settings(routing_path=good_routing, sandbox_dir=tmp_path),
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


async def test_every_filter_is_answered_from_the_record(
    merchant: tuple[TestClient[Any, Any], str],
) -> None:
    """Payments only the record holds (they left Redis long ago): each filter, alone and
    together, and a cursor through the result."""
    client, secret = merchant
    rt = client.app[RUNTIME]
    key = await rt.store.merchants.key_for_secret(secret)
    assert key is not None
    mch = key.merchant_id
    base = 1_700_000_000_000
    shapes = [
        ("qr", "wechat", "wechat_main", 100, "succeeded"),
        ("qr", "alipay", "alipay_main", 500, "failed"),
        ("web", "alipay", "alipay_main", 900, "succeeded"),
        ("h5", "unionpay", "unionpay_main", 1500, "succeeded"),
        ("qr", "wechat", "wechat_main", 2500, "closed"),
    ]
    rows = [
        payment_row(
            mch,
            method=method,
            wallet=wallet,
            channel=channel,
            amount=amount,
            status=status,
            created_ms=base + i,
            pay_id=new_id("pay", partition=i),
        )
        for i, (method, wallet, channel, amount, status) in enumerate(shapes)
    ]
    async with rt.record.engine.begin() as conn:
        await upsert(conn, payments, rows)
    ids = [row["id"] for row in reversed(rows)]  # newest first

    async def listed(query: str) -> list[str]:
        status, body = await get(merchant, query)
        assert status == 200, body
        return [p["id"] for p in body["data"]]

    assert await listed("limit=100") == ids
    assert await listed("method=qr") == [ids[0], ids[3], ids[4]]
    assert await listed("wallet=alipay") == [ids[2], ids[3]]
    assert await listed("channel=unionpay_main") == [ids[1]]
    assert await listed("amount_gte=500&amount_lte=1500") == [ids[1], ids[2], ids[3]]
    assert await listed("status=succeeded&method=qr") == [ids[4]]
    assert await listed("wallet=alipay&amount_gte=600") == [ids[2]]
    # A cursor through a filtered list: pages of one, nothing missed or repeated.
    seen: list[str] = []
    cursor = ""
    while True:
        status, body = await get(merchant, f"limit=1&method=qr{cursor}")
        assert status == 200, body
        seen += [p["id"] for p in body["data"]]
        if not body["has_more"]:
            break
        cursor = f"&starting_after={body['data'][-1]['id']}"
    assert seen == [ids[0], ids[3], ids[4]]


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
