"""`GET /admin/ledger/balances` through a real router application (aiohttp's test server), on
a real PostgreSQL and on the embedded SQLite: the balances per account, the filters, the
totals, the admin token, bad parameters named, and 503 for a router without a record."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from router.app import RECORD, build_app
from router.record import Record
from router.record.connect import create_engine, engine_url
from router.record.postings import post_channel_fee, post_state_changes
from router.settings import Settings
from tests.conftest import loopback_socket
from tests.record.sample_rows import payment_row, payments, refund_row, refunds, upsert
from tests.router.test_cli import good_routing

__all__ = ["good_routing"]

TOKEN = "ledger-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
MCH, OTHER = "mch_ledgerapi01", "mch_ledgerapi02"


async def client_for(good_routing: Path, record: Record | None) -> TestClient[Any, Any]:
    settings = Settings(routing_path=good_routing, admin_token=TOKEN)
    app = await build_app(settings, run_worker=False, watch_config=False, run_dispatcher=False)
    if record is not None:
        # The record as the router would hold it with PAYROUTER_DATABASE_URL set; handed over
        # so the embedded SQLite is served through the same endpoint.
        app[RECORD] = record
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.fixture
async def client(migrated: Record, good_routing: Path) -> AsyncIterator[TestClient[Any, Any]]:
    pay = payment_row(MCH, amount=1999)
    usd = payment_row(MCH, amount=700, currency="USD", channel="alipay_main")
    other = payment_row(OTHER, amount=300)
    ref = refund_row(pay, 500)
    async with migrated.engine.begin() as conn:
        await upsert(conn, payments, [pay, usd, other])
        await upsert(conn, refunds, [ref])
        await post_state_changes(conn, [pay, usd, other], [ref])
        await post_channel_fee(conn, pay["id"], "wechat_main", MCH, "CNY", 12, at_ms=1)
    client = await client_for(good_routing, migrated)
    try:
        yield client
    finally:
        await client.close()


async def balances(client: TestClient[Any, Any], query: str = "") -> dict[str, Any]:
    response = await client.get(f"/admin/ledger/balances{query}", headers=ADMIN)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def test_every_account_with_its_balance_and_the_totals(client: TestClient[Any, Any]) -> None:
    body = await balances(client)
    got = {(a["account"], a["balance"], a["entries"]) for a in body["data"]}
    assert got == {
        ("channel_clearing:wechat_main:CNY", 1999 + 300 - 500 - 12, 4),
        (f"merchant_receivable:{MCH}:CNY", -1999, 1),
        (f"merchant_receivable:{OTHER}:CNY", -300, 1),
        (f"refunds:{MCH}:CNY", 500, 1),
        (f"fees:{MCH}:CNY", 12, 1),
        ("channel_clearing:alipay_main:USD", 700, 1),
        (f"merchant_receivable:{MCH}:USD", -700, 1),
    }
    clearing = next(a for a in body["data"] if a["kind"] == "channel_clearing")
    assert set(clearing) == {"account", "kind", "owner", "currency", "balance", "entries"}
    assert body["totals"] == [{"currency": "CNY", "balance": 0}, {"currency": "USD", "balance": 0}]
    assert body["balanced"] is True


async def test_the_filters(client: TestClient[Any, Any]) -> None:
    mine = await balances(client, f"?merchant={MCH}")
    assert {a["owner"] for a in mine["data"]} == {MCH}
    assert len(mine["data"]) == 4
    usd = await balances(client, f"?merchant={MCH}&currency=USD&kind=merchant_receivable")
    assert [(a["account"], a["balance"]) for a in usd["data"]] == [
        (f"merchant_receivable:{MCH}:USD", -700)
    ]
    clearing = await balances(client, "?kind=channel_clearing")
    assert {a["owner"] for a in clearing["data"]} == {"wechat_main", "alipay_main"}
    # The totals are the whole ledger's, whatever the filter.
    assert clearing["totals"] == mine["totals"]


@pytest.mark.parametrize(
    ("query", "param"),
    [("?kind=cash", "kind"), ("?currency=cny", "currency"), ("?colour=red", "colour")],
)
async def test_a_bad_parameter_is_named(
    client: TestClient[Any, Any], query: str, param: str
) -> None:
    response = await client.get(f"/admin/ledger/balances{query}", headers=ADMIN)
    assert response.status == 400
    assert (await response.json())["error"]["param"] == param


async def test_the_admin_token_is_required(client: TestClient[Any, Any]) -> None:
    response = await client.get("/admin/ledger/balances")
    assert response.status == 401
    wrong = await client.get("/admin/ledger/balances", headers={"Authorization": "Bearer not-it"})
    assert wrong.status == 401


async def test_a_database_that_does_not_answer_is_503_with_retry_after(
    good_routing: Path,
) -> None:
    with loopback_socket() as closed:
        url = engine_url(f"postgresql://u:hunter2@127.0.0.1:{closed.getsockname()[1]}/x", Path())
    gone = Record(create_engine(url), "PostgreSQL at nowhere", embedded=False)
    client = await client_for(good_routing, gone)
    try:
        response = await client.get("/admin/ledger/balances", headers=ADMIN)
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
        error = (await response.json())["error"]
        assert error["code"] == "record_unavailable"
        assert "hunter2" not in error["message"]
    finally:
        await client.close()
