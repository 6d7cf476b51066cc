"""The merchant API's edges: validation, idempotency, authentication, service endpoints."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

from router.api.auth import sign
from router.api.middleware import RUNTIME
from tests.e2e.conftest import Router, Simulator, sim_json
from tests.router.test_request_validation import GOOD, body_with

pytestmark = pytest.mark.every_topology

# Refused by the request model alone: tests/router/test_request_validation.py has them all; these
# few prove the API answers them. The others need the routing table or a body that is no object.
BAD_BODIES: list[tuple[str, Any, int, str]] = [
    ("missing amount", body_with(amount=...), 400, "amount"),
    ("metadata not strings", body_with(metadata={"a": 1}), 400, "metadata.a"),
    ("unknown field", body_with(colour="red"), 400, "colour"),
    ("unsupported currency", body_with(currency="USD"), 400, "currency"),
    ("web on wechat", body_with(method="web", wallet="wechat"), 400, "method"),
    ("unknown channel", body_with(channel="nope"), 400, "channel"),
    ("jsapi without payer", body_with(method="jsapi"), 400, "payer_id"),
    ("h5 without ip", body_with(method="h5"), 400, "client_ip"),
    ("barcode without code", body_with(method="barcode"), 400, "auth_code"),
    ("auth_code on qr", body_with(auth_code="134567890123456789"), 400, "auth_code"),
    ("array body", [GOOD], 400, "body"),
]


@pytest.mark.parametrize(
    ("case", "body", "status", "param"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES]
)
async def test_malformed_bodies_name_the_field(
    router: Router, case: str, body: Any, status: int, param: str
) -> None:
    code, data, headers = await router.request("POST", "/v1/payments", json=body)
    assert code == status, data
    assert data["error"]["param"] == param, data
    assert data["error"]["type"] == "invalid_request_error"
    assert headers["X-Request-Id"]
    listed, _, _ = await router.request("GET", "/v1/payments")
    assert listed == 200


RAW_BODIES = [
    (b"{not json", "body"),
    (b"null", "body"),
    (b"", "amount"),
    (b"\xff\xfe", "body"),
    (b"[" * 30_000, "body"),
    (b'{"amount": NaN, "merchant_order_id": "x", "description": "d", "method": "qr"}', "amount"),
]


@pytest.mark.parametrize(("raw", "param"), RAW_BODIES)
async def test_unparseable_bodies(router: Router, raw: bytes, param: str) -> None:
    async with router.http.post(f"{router.url}/v1/payments", data=raw, headers=router.auth) as resp:
        data = await resp.json()
        assert resp.status == 400, data
        assert data["error"]["param"] == param


async def test_oversized_body(router: Router) -> None:
    raw = json.dumps(body_with(description="x" * 100_000)).encode()
    async with router.http.post(f"{router.url}/v1/payments", data=raw, headers=router.auth) as resp:
        assert resp.status == 413
        assert (await resp.json())["error"]["param"] == "body"


BAD_QUERIES = [
    ("limit=0", "limit"),
    ("limit=101", "limit"),
    ("limit=ten", "limit"),
    ("status=paid", "status"),
    ("created_gte=yesterday", "created_gte"),
    ("created_lt=2026-01-01T00:00:00", "created_lt"),
    ("starting_after=pay_missing000000000000000", "starting_after"),
    ("starting_after=junk", "starting_after"),
    ("colour=red", "colour"),
    ("limit=1&limit=2", "limit"),
]


@pytest.mark.parametrize(("query", "param"), BAD_QUERIES)
async def test_malformed_queries_name_the_field(router: Router, query: str, param: str) -> None:
    code, data, _ = await router.request("GET", f"/v1/payments?{query}")
    assert code == 400, data
    assert data["error"]["param"] == param


BAD_HEADERS = [
    ({"Authorization": "Basic abc"}, 401, "Authorization"),
    ({"Authorization": "Bearer sk_test_wrong"}, 401, "Authorization"),
    ({"Idempotency-Key": "x" * 256}, 400, "Idempotency-Key"),
    ({"Idempotency-Key": "has space"}, 400, "Idempotency-Key"),
    ({"X-Payrouter-Key-Id": "key_x"}, 401, "X-Payrouter-Timestamp"),
]


@pytest.mark.parametrize(("headers", "status", "param"), BAD_HEADERS)
async def test_malformed_headers_name_the_header(
    router: Router, headers: dict[str, str], status: int, param: str
) -> None:
    code, data, _ = await router.request("POST", "/v1/payments", json=GOOD, headers=headers)
    assert code == status, data
    assert data["error"]["param"] == param
    _listed, page, _ = await router.request("GET", "/v1/payments")
    assert page["data"] == []


async def test_no_credentials(router: Router) -> None:
    async with router.http.get(f"{router.url}/v1/payments") as resp:
        assert resp.status == 401
        assert (await resp.json())["error"]["param"] == "Authorization"


async def test_unknown_payment_and_route(router: Router) -> None:
    code, data, _ = await router.request("GET", "/v1/payments/pay_doesnotexist00000000000")
    assert code == 404 and data["error"]["code"] == "resource_missing"
    code, data, _ = await router.request("GET", "/v1/payments/../../etc")
    assert code == 404
    code, data, _ = await router.request("GET", "/v1/nothing-here")
    assert code == 404 and data["error"]["type"] == "invalid_request_error"


async def test_payments_of_other_merchants_are_invisible(router: Router) -> None:
    _, created = await router.create()
    _other, issued = await router.app[RUNTIME].store.merchants.create("Other")
    headers = {"Authorization": f"Bearer {issued.secret}"}
    async with router.http.get(f"{router.url}/v1/payments/{created['id']}", headers=headers) as r:
        assert r.status == 404


async def test_idempotent_replay_and_conflicts(router: Router) -> None:
    headers = {"Idempotency-Key": "order-77"}
    body = body_with(merchant_order_id="I-77")
    s1, first, _ = await router.request("POST", "/v1/payments", json=body, headers=headers)
    s2, second, h2 = await router.request("POST", "/v1/payments", json=body, headers=headers)
    assert (s1, s2) == (201, 201)
    assert first == second
    assert h2["Idempotent-Replayed"] == "true"
    s3, third, _ = await router.request(
        "POST", "/v1/payments", json=body_with(merchant_order_id="I-78"), headers=headers
    )
    assert s3 == 422 and third["error"]["type"] == "idempotency_error"
    s4, dup, _ = await router.request("POST", "/v1/payments", json=body)
    assert s4 == 409 and dup["error"]["code"] == "duplicate_order"
    assert dup["error"]["payment_id"] == first["id"]
    assert dup["error"]["param"] == "merchant_order_id"


async def test_fifty_concurrent_creates_make_one_channel_order(
    router: Router, simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    await sim_json(http, simulator, "PUT", "/sim/faults", {"latency_ms": 200})
    headers = {"Idempotency-Key": "burst-1"}
    body = body_with(merchant_order_id="BURST-1")
    results = await asyncio.gather(
        *(router.request("POST", "/v1/payments", json=body, headers=headers) for _ in range(50))
    )
    statuses = [s for s, _, _ in results]
    assert set(statuses) <= {201, 409}
    ids = {data["id"] for s, data, _ in results if s == 201}
    assert len(ids) == 1
    for s, data, _ in results:
        if s == 409:
            assert data["error"]["code"] == "idempotency_key_in_use"
    _, page, _ = await router.request("GET", "/v1/payments?merchant_order_id=BURST-1")
    assert [p["id"] for p in page["data"]] == list(ids)
    code, order = await sim_json(http, simulator, "GET", f"/sim/orders/{ids.pop()}")
    assert code == 200 and order["order"]["trade_state"] == "NOTPAY"
    calls = router.app[RUNTIME].metrics.channel_calls.labels("wechat_main", "create", "ok")
    assert calls._value.get() == 1


def signed_headers(
    router: Router,
    method: str,
    path: str,
    body: bytes,
    *,
    ts: int | None = None,
    nonce: str = "nonce-0001",
    secret: str | None = None,
) -> dict[str, str]:
    timestamp = str(ts if ts is not None else int(time.time()))
    return {
        "X-Payrouter-Key-Id": router.key_id,
        "X-Payrouter-Timestamp": timestamp,
        "X-Payrouter-Nonce": nonce,
        "X-Payrouter-Signature": sign(
            secret or router.secret, method, path, timestamp, nonce, body
        ),
        "Content-Type": "application/json",
    }


async def test_signed_requests(router: Router) -> None:
    body = json.dumps(body_with(merchant_order_id="S-1")).encode()

    async def send(
        headers: dict[str, str], path: str = "/v1/payments", data: bytes = body
    ) -> tuple[int, dict[str, Any]]:
        async with router.http.post(router.url + path, data=data, headers=headers) as resp:
            return resp.status, await resp.json()

    status, ok = await send(signed_headers(router, "POST", "/v1/payments", body))
    assert status == 201, ok
    replay = signed_headers(router, "POST", "/v1/payments", body)
    status, err = await send(replay)
    assert status == 401 and err["error"]["code"] == "nonce_reused"
    stale = signed_headers(
        router, "POST", "/v1/payments", body, ts=int(time.time()) - 301, nonce="nonce-0002"
    )
    status, err = await send(stale)
    assert status == 401 and err["error"]["param"] == "X-Payrouter-Timestamp"
    wrong = signed_headers(
        router, "POST", "/v1/payments", body, nonce="nonce-0003", secret="sk_test_not-the-secret"
    )
    status, err = await send(wrong)
    assert status == 401 and err["error"]["param"] == "X-Payrouter-Signature"
    other_body = signed_headers(router, "POST", "/v1/payments", body, nonce="nonce-0004")
    status, err = await send(other_body, data=body.replace(b"1999", b"9999"))
    assert status == 401 and err["error"]["code"] == "invalid_signature"
    query_path = "/v1/payments?limit=1"
    async with router.http.get(
        router.url + query_path,
        headers=signed_headers(router, "GET", query_path, b"", nonce="nonce-0005"),
    ) as resp:
        assert resp.status == 200


async def test_merchant_that_requires_signatures(router: Router) -> None:
    store = router.app[RUNTIME].store
    _merchant, issued = await store.merchants.create("Strict", require_signed=True)
    async with router.http.get(
        f"{router.url}/v1/payments", headers={"Authorization": f"Bearer {issued.secret}"}
    ) as resp:
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == "signature_required"


async def test_rotated_key_works_through_grace_then_stops(router: Router) -> None:
    store = router.app[RUNTIME].store
    rotated = await store.merchants.rotate(router.merchant_id, "test", grace_s=60)
    assert (await router.request("GET", "/v1/payments"))[0] == 200
    router.clock.advance(61)
    code, err, _ = await router.request("GET", "/v1/payments")
    assert code == 401 and err["error"]["code"] == "api_key_expired"
    async with router.http.get(
        f"{router.url}/v1/payments", headers={"Authorization": f"Bearer {rotated.secret}"}
    ) as resp:
        assert resp.status == 200


async def test_service_endpoints(router: Router) -> None:
    async with router.http.get(f"{router.url}/healthz") as resp:
        assert resp.status == 200 and resp.headers["X-Request-Id"]
    async with router.http.get(f"{router.url}/readyz") as resp:
        assert resp.status == 200
        assert (await resp.json())["status"] == "ready"
    async with router.http.get(f"{router.url}/openapi.json") as resp:
        spec = await resp.json()
        assert "CreatePaymentRequest" in spec["components"]["schemas"]
        assert "/v1/payments/{id}/close" in spec["paths"]
    await router.create()
    async with router.http.get(f"{router.url}/metrics") as resp:
        text = await resp.text()
        assert (
            'payrouter_channel_calls_total{account="wechat_main",operation="create",outcome="ok"}'
            in text
        )
    async with router.http.get(
        f"{router.url}/healthz", headers={"X-Request-Id": "my-trace-id-123"}
    ) as resp:
        assert resp.headers["X-Request-Id"] == "my-trace-id-123"


async def test_list_paginates_newest_first(router: Router) -> None:
    ids = [(await router.create())[1]["id"] for _ in range(5)]
    seen: list[str] = []
    path = "/v1/payments?limit=2"
    while True:
        _, page, _ = await router.request("GET", path)
        seen += [p["id"] for p in page["data"]]
        if not page["has_more"]:
            break
        path = f"/v1/payments?limit=2&starting_after={page['data'][-1]['id']}"
    assert sorted(seen) == sorted(ids) and len(seen) == 5
