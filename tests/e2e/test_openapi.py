"""The published OpenAPI says what the server does: statuses, headers, parameters, bodies.

The fuzzing in `test_openapi_fuzz.py` holds every answer to the document; these tests pin the
disagreements it and a first schemathesis run found, one by one.
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest

from router.api.openapi import build_spec
from tests.e2e.conftest import Router

SPEC = build_spec()
OPERATIONS = [
    (path, method, operation)
    for path, item in SPEC["paths"].items()
    for method, operation in item.items()
]
IDS = [f"{method.upper()} {path}" for path, method, _ in OPERATIONS]


def body_schema_validator(name: str) -> jsonschema_rs.Validator:
    return jsonschema_rs.validator_for(
        {"$ref": f"#/components/schemas/{name}", "components": SPEC["components"]},
        validate_formats=True,
    )


@pytest.mark.parametrize(("path", "method", "operation"), OPERATIONS, ids=IDS)
def test_every_operation_documents_what_any_merchant_route_can_answer(
    path: str, method: str, operation: dict[str, Any]
) -> None:
    responses = operation["responses"]
    for status in ("401", "403", "413", "503"):
        assert status in responses, status
    assert "store_unavailable" in responses["503"]["description"]
    assert "Retry-After" in responses["503"]["headers"]
    for status, response in responses.items():
        assert "X-Request-Id" in response["headers"], status
    if method == "post":
        for status in ("400", "409", "422"):
            assert status in responses, status
        names = [p["name"] for p in operation["parameters"]]
        assert "Idempotency-Key" in names
        assert "Idempotent-Replayed" in responses[min(responses)]["headers"]


def test_close_and_refund_document_their_idempotency_answers_and_the_repeated_refund() -> None:
    close = SPEC["paths"]["/v1/payments/{id}/close"]["post"]["responses"]
    assert {"400", "409", "422", "502", "503"} <= close.keys()
    refund = SPEC["paths"]["/v1/payments/{id}/refunds"]["post"]["responses"]
    assert {"200", "201", "400", "402", "409", "422"} <= refund.keys()
    assert "merchant_refund_id" in refund["200"]["description"]


def test_idempotency_key_pattern_is_documented() -> None:
    post = SPEC["paths"]["/v1/payments"]["post"]
    (key,) = [p for p in post["parameters"] if p["name"] == "Idempotency-Key"]
    schema = jsonschema_rs.validator_for(key["schema"])
    assert schema.is_valid("order-1001/retry~2")
    assert not schema.is_valid("has space")
    assert not schema.is_valid("é")
    assert not schema.is_valid("")
    assert not schema.is_valid("k" * 256)


def test_signed_requests_are_four_headers_sent_together() -> None:
    schemes = SPEC["components"]["securitySchemes"]
    (signed,) = [r for r in SPEC["security"] if "bearer" not in r]
    assert sorted(schemes[name]["name"] for name in signed) == [
        "X-Payrouter-Key-Id",
        "X-Payrouter-Nonce",
        "X-Payrouter-Signature",
        "X-Payrouter-Timestamp",
    ]
    assert all(schemes[name]["type"] == "apiKey" for name in signed)
    assert schemes["bearer"] == schemes["bearer"] | {"type": "http", "scheme": "bearer"}


@pytest.mark.parametrize(
    ("body", "valid"),
    [
        ({"method": "qr"}, True),
        ({"method": "jsapi"}, False),
        ({"method": "jsapi", "payer_id": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}, True),
        ({"method": "barcode"}, False),
        ({"method": "barcode", "auth_code": "134567890123456789"}, True),
        ({"method": "qr", "auth_code": "134567890123456789"}, False),
        ({"method": "h5"}, False),
        ({"method": "h5", "client_ip": "203.0.113.9"}, True),
        ({"method": "h5", "client_ip": "2001:db8::1"}, True),
        ({"method": "h5", "client_ip": "not-an-ip"}, False),
    ],
)
def test_method_requirements_are_in_the_schema(body: dict[str, Any], valid: bool) -> None:
    full = {"amount": 1999, "merchant_order_id": "A1", "description": "Demo"} | body
    assert body_schema_validator("CreatePaymentRequest").is_valid(full) is valid


async def test_method_requirements_in_the_schema_are_the_servers(router: Router) -> None:
    validator = body_schema_validator("CreatePaymentRequest")
    for extra in ({"method": "jsapi"}, {"method": "barcode"}, {"method": "h5"}):
        body = {"amount": 1999, "merchant_order_id": "M1", "description": "Demo"} | extra
        assert not validator.is_valid(body)
        status, data, _ = await router.request("POST", "/v1/payments", json=body)
        assert status == 400, data
    for example in SPEC["components"]["schemas"]["CreatePaymentRequest"]["examples"]:
        assert validator.is_valid(example)


@pytest.mark.parametrize(
    "path",
    ["/v1/payments", "/v1/events", "/v1/payments/{id}/refunds"],
)
async def test_empty_query_parameters_are_absent(router: Router, path: str) -> None:
    status, created = await router.create()
    assert status == 201, created
    path = path.format(id=created["id"])
    _, plain, _ = await router.request("GET", path)
    empty = "starting_after=&limit=" + ("&status=&created_lt=" if path == "/v1/payments" else "")
    status, data, _ = await router.request("GET", f"{path}?{empty}")
    assert status == 200, data
    assert data == plain
    status, data, _ = await router.request("GET", f"{path}?colour=")
    assert status == 400 and data["error"]["param"] == "colour"


@pytest.mark.parametrize(
    "value", ["0.5", "1700000000", "2025-06-15", "2025-06-15T15:06:00", "2025-06-15 15:06:00Z"]
)
async def test_query_datetimes_are_rfc3339_only(router: Router, value: str) -> None:
    status, data, _ = await router.request("GET", f"/v1/payments?created_lt={value}")
    assert status == 400, data
    assert data["error"]["param"] == "created_lt"
    assert "RFC 3339" in data["error"]["message"]


async def test_query_datetimes_take_any_offset(router: Router) -> None:
    status, created = await router.create()
    assert status == 201
    for value in ("2999-01-01T00:00:00Z", "2999-01-01t08:00:00.5%2B08:00"):
        status, data, _ = await router.request("GET", f"/v1/payments?created_lt={value}")
        assert status == 200, data
        assert [p["id"] for p in data["data"]] == [created["id"]]


@pytest.mark.parametrize("value", ["1_0", "%2010", "10.0", "%2B10", "%EF%BC%91%EF%BC%90", "0x10"])
async def test_query_integers_are_ascii_digits(router: Router, value: str) -> None:
    status, data, _ = await router.request("GET", f"/v1/events?limit={value}")
    assert status == 400, data
    assert data["error"]["param"] == "limit"


async def test_method_not_allowed_names_the_allowed_methods(router: Router) -> None:
    status, data, headers = await router.request("DELETE", "/v1/payments")
    assert status == 405
    assert data["error"]["code"] == "method_not_allowed"
    assert {m.strip() for m in headers["Allow"].split(",")} >= {"GET", "POST"}
    assert headers["X-Request-Id"]


@pytest.mark.parametrize(
    ("field", "value", "status"),
    [
        ("amount", 1999.0, 201),
        ("amount", 1999.5, 400),
        ("expires_in", 600.0, 201),
        ("client_ip", "0", 400),
        ("client_ip", "..", 400),
        ("client_ip", "fe80::1%eth0", 400),
    ],
)
async def test_bodies_mean_what_the_schema_says(
    router: Router, field: str, value: Any, status: int
) -> None:
    """JSON Schema's integer is any number without a fraction; an IP address is one."""
    got, data = await router.create(**{field: value})
    assert got == status, data
    if status == 201:
        assert data.get(field, value) == int(value)
    else:
        assert data["error"]["param"] == field


async def test_every_merchant_route_is_in_the_document(router: Router) -> None:
    """A merchant route added without its row in `router.api.openapi.operations` fails here."""
    routes = {
        (route.method.lower(), route.resource.canonical)
        for route in router.app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith("/v1/")
        and not route.resource.canonical.startswith("/v1/notify/")
        and route.method != "HEAD"
    }
    documented = {(method, path) for path, method, _ in OPERATIONS}
    assert routes == documented
