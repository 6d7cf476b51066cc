"""Models tolerate a growing API; error bodies become the right exception (pure logic)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from payrouter_sdk import (
    APIError,
    AuthenticationError,
    ChannelError,
    Event,
    IdempotencyError,
    InvalidRequestError,
    NotFoundError,
    Payment,
    PaymentList,
    PermissionDeniedError,
    RateLimitError,
    Refund,
)
from payrouter_sdk._errors import error_from_response, parse_retry_after
from router.models import Payment as ServerPayment
from router.models import Routing

SERVER_PAYMENT = ServerPayment(
    id="pay_0123456789abcdef",
    merchant_order_id="A1",
    amount=1999,
    currency="CNY",
    method="qr",
    wallet="wechat",
    channel="wechat_main",
    status="pending",
    description="Demo",
    routing=Routing(rule="default"),
    created_at="2025-06-15T15:06:00Z",
    livemode=False,
)


def test_the_router_payment_reads_as_an_sdk_payment() -> None:
    sent = SERVER_PAYMENT.model_dump(mode="json")
    assert Payment.model_validate(sent).model_dump(mode="json") == sent


def test_new_fields_and_values_are_kept() -> None:
    grown = SERVER_PAYMENT.model_dump(mode="json") | {
        "status": "disputed",
        "method": "face_pay",
        "dispute": {"score": 3},
    }
    payment = Payment.model_validate(grown)
    assert (payment.status, payment.method) == ("disputed", "face_pay")
    assert payment.model_extra == {"dispute": {"score": 3}}
    page = PaymentList.model_validate({"object": "list", "data": [grown], "has_more": False})
    assert page.data[0].id == payment.id


def test_event_data_object() -> None:
    refund = {
        "id": "re_1",
        "object": "refund",
        "payment": "pay_1",
        "amount": 500,
        "currency": "CNY",
        "status": "succeeded",
        "created_at": "2025-06-15T15:06:00Z",
    }
    event = Event(id="evt_1", type="refund.succeeded", created_at="now", data=refund)
    assert isinstance(event.data_object, Refund) and event.data_object.amount == 500
    other = Event(id="evt_2", type="x.y", created_at="now", data={"object": "mystery"})
    assert other.data_object == {"object": "mystery"}


def body(type_: str, code: str, **extra: str) -> bytes:
    return json.dumps({"error": {"type": type_, "code": code, "message": "m"} | extra}).encode()


@pytest.mark.parametrize(
    ("status", "type_", "cls"),
    [
        (400, "invalid_request_error", InvalidRequestError),
        (404, "invalid_request_error", NotFoundError),
        (409, "invalid_request_error", InvalidRequestError),
        (401, "authentication_error", AuthenticationError),
        (403, "permission_error", PermissionDeniedError),
        (409, "idempotency_error", IdempotencyError),
        (422, "idempotency_error", IdempotencyError),
        (429, "rate_limit_error", RateLimitError),
        (402, "channel_error", ChannelError),
        (500, "api_error", APIError),
        (418, "teapot_error", APIError),
        (401, "brand_new_error", AuthenticationError),
    ],
)
def test_error_class_follows_the_type(status: int, type_: str, cls: type[Exception]) -> None:
    error = error_from_response(status, body(type_, "c"), {"X-Request-Id": "req_1"})
    assert type(error) is cls
    assert (error.status, error.type, error.code, error.request_id) == (status, type_, "c", "req_1")


def test_channel_error_names_the_objects() -> None:
    raw = body("channel_error", "channel_declined", payment_id="pay_1", refund_id="re_1")
    error = error_from_response(402, raw, {})
    assert isinstance(error, ChannelError)
    assert (error.payment_id, error.refund_id) == ("pay_1", "re_1")


def test_answer_without_an_error_body() -> None:
    error = error_from_response(404, b"<html>nope</html>", {})
    assert isinstance(error, NotFoundError)
    assert error.type is None and "nope" in error.message


def test_retry_after_forms() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    found = parse_retry_after(later)
    assert found is not None and 25 <= found <= 30
