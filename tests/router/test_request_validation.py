"""`POST /v1/payments` bodies refused by the request model alone, as the API answers them.

What needs no router (types, ranges, patterns, unknown fields) is checked here through the
same `validate` the API calls, down to the error body; tests/e2e/test_api.py keeps the cases
that need the routing table or the wire (methods a wallet does not offer, unknown channels,
bodies that are not objects) and a few of these, to prove the wiring.
"""

from __future__ import annotations

from typing import Any

import pytest

from router.api.middleware import validate
from router.errors import ApiError
from router.models import CreatePaymentRequest

GOOD: dict[str, Any] = {
    "amount": 1999,
    "merchant_order_id": "V-1",
    "description": "Demo",
    "method": "qr",
}


def body_with(**changes: Any) -> dict[str, Any]:
    """`GOOD` with fields changed; a field set to `...` is removed."""
    out = dict(GOOD)
    for key, value in changes.items():
        if value is ...:
            out.pop(key)
        else:
            out[key] = value
    return out


MISSING, UNKNOWN, INVALID = "parameter_missing", "parameter_unknown", "parameter_invalid"

BAD_FIELDS: list[tuple[str, dict[str, Any], str, str]] = [
    ("missing amount", body_with(amount=...), MISSING, "amount"),
    ("float amount", body_with(amount=19.99), INVALID, "amount"),
    ("string amount", body_with(amount="1999"), INVALID, "amount"),
    ("bool amount", body_with(amount=True), INVALID, "amount"),
    ("zero amount", body_with(amount=0), INVALID, "amount"),
    ("negative amount", body_with(amount=-5), INVALID, "amount"),
    ("huge amount", body_with(amount=10**30), INVALID, "amount"),
    ("lower-case currency", body_with(currency="cny"), INVALID, "currency"),
    ("missing order id", body_with(merchant_order_id=...), MISSING, "merchant_order_id"),
    ("empty order id", body_with(merchant_order_id=""), INVALID, "merchant_order_id"),
    ("order id with space", body_with(merchant_order_id="a b"), INVALID, "merchant_order_id"),
    ("long order id", body_with(merchant_order_id="x" * 65), INVALID, "merchant_order_id"),
    ("missing description", body_with(description=...), MISSING, "description"),
    ("unknown method", body_with(method="cash"), INVALID, "method"),
    ("unknown wallet", body_with(wallet="paypal"), INVALID, "wallet"),
    ("bad notify_url", body_with(notify_url="javascript:alert(1)"), INVALID, "notify_url"),
    ("short expiry", body_with(expires_in=5), INVALID, "expires_in"),
    ("bad client_ip", body_with(client_ip="not an ip"), INVALID, "client_ip"),
    ("metadata not strings", body_with(metadata={"a": 1}), INVALID, "metadata.a"),
    (
        "too much metadata",
        body_with(metadata={f"k{i}": "v" for i in range(21)}),
        INVALID,
        "metadata",
    ),
    ("unknown field", body_with(colour="red"), UNKNOWN, "colour"),
]


@pytest.mark.parametrize(
    ("case", "body", "code", "param"), BAD_FIELDS, ids=[c[0] for c in BAD_FIELDS]
)
def test_malformed_fields_name_the_field(
    case: str, body: dict[str, Any], code: str, param: str
) -> None:
    with pytest.raises(ApiError) as refused:
        validate(CreatePaymentRequest, body)
    assert refused.value.status == 400
    error = refused.value.body()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == code
    assert error["param"] == param
    assert error["message"].startswith(f"{param}: ")


def test_the_good_body_passes() -> None:
    assert validate(CreatePaymentRequest, GOOD).amount == 1999
