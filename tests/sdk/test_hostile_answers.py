"""Whatever a server answers, the SDK raises one of its own errors and never waits on a value it
cannot read: odd `Retry-After` values, HTML, truncated or non-object bodies, fields of the
wrong types. Against the scripted server on loopback (tests/sdk/scripted.py)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from payrouter_sdk import (
    APIConnectionError,
    APIError,
    AsyncClient,
    ChannelError,
    IdempotencyError,
    InvalidRequestError,
    NotFoundError,
    PayrouterError,
    RateLimitError,
)
from payrouter_sdk._errors import parse_retry_after
from tests.sdk.scripted import PAYMENT, Scripted, client_of, create, in_use, unavailable

NOT_RFC_9110 = ["inf", "-inf", "nan", "1e9", "1.5", "-5", "+5", "0x10", "１２", "٣", "²", "", " "]
"""`float()` reads all of the numeric ones; none is delta-seconds or an HTTP-date."""


def _http_date(delta: timedelta) -> str:
    return format_datetime(datetime.now(UTC) + delta, usegmt=True)


@pytest.mark.parametrize("value", NOT_RFC_9110)
def test_retry_after_that_is_not_rfc_9110_is_unreadable(value: str) -> None:
    assert parse_retry_after(value) is None


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("0", 0.0),
        ("120", 120.0),
        (" 7 ", 7.0),
        ("000000000000000000001", 1.0),
        ("9" * 5000, 2.0**31),
        ("Sun, 06 Nov 1994 08:49:37 GMT", 0.0),
        ("Sunday, 06-Nov-94 08:49:37 GMT", 0.0),
        ("Sun Nov  6 08:49:37 1994", 0.0),
    ],
)
def test_retry_after_delta_seconds_and_http_dates(value: str, seconds: float) -> None:
    assert parse_retry_after(value) == seconds


def test_retry_after_in_a_future_http_date() -> None:
    waited = parse_retry_after(_http_date(timedelta(hours=1)))
    assert waited is not None and 3500 < waited <= 3600


@given(st.text())
def test_retry_after_is_never_negative_infinite_or_an_exception(value: str) -> None:
    seconds = parse_retry_after(value)
    assert seconds is None or (math.isfinite(seconds) and 0 <= seconds <= 2**31)


@pytest.mark.parametrize("value", NOT_RFC_9110)
async def test_unreadable_retry_after_on_a_5xx_falls_back_to_backoff(
    server: Scripted, value: str
) -> None:
    """`max_retry_wait=1`: a value read as a number of seconds above it would be raised."""
    server.script = [unavailable(retry_after=value)]
    payment = await create(client_of(server, max_retry_wait=1.0))
    assert payment.id == PAYMENT["id"]
    assert len(server.seen) == 2


@pytest.mark.parametrize("value", NOT_RFC_9110)
async def test_unreadable_retry_after_on_a_key_in_use_falls_back_to_backoff(
    server: Scripted, value: str
) -> None:
    server.script = [in_use(value)]
    payment = await create(client_of(server, max_retry_wait=1.0, key_in_use_timeout=5.0))
    assert payment.id == PAYMENT["id"]
    assert len(server.seen) == 2


@pytest.mark.parametrize("value", ["30", "9" * 5000, "__date__"])
async def test_retry_after_above_max_retry_wait_is_raised_not_waited_for(
    server: Scripted, value: str
) -> None:
    value = _http_date(timedelta(minutes=5)) if value == "__date__" else value
    server.script = [unavailable(retry_after=value)]
    with pytest.raises(APIError):
        await create(client_of(server, max_retry_wait=10.0))
    server.script = [in_use(value)]
    with pytest.raises(IdempotencyError):
        await create(client_of(server, max_retry_wait=10.0, key_in_use_timeout=600.0))
    assert len(server.seen) == 2


async def test_a_past_http_date_is_retried_at_once(server: Scripted) -> None:
    server.script = [unavailable(retry_after=_http_date(-timedelta(hours=1)))]
    await create(client_of(server, max_retry_wait=1.0))
    assert len(server.seen) == 2


async def test_key_in_use_with_retry_after_zero_ends_within_its_budget(server: Scripted) -> None:
    """Waits are counted in time spent, with a floor: `Retry-After: 0` forever is no loop."""
    server.script = [in_use("0") for _ in range(1000)]
    client = client_of(server, key_in_use_timeout=1.0)
    client.initial_retry_delay = 0.1
    with pytest.raises(IdempotencyError):
        await create(client)
    assert len(server.seen) <= 11


def test_waits_are_checked_when_the_client_is_made() -> None:
    for bad in (-1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="max_retry_wait"):
            AsyncClient(api_key="sk_test_x", base_url="http://127.0.0.1:1", max_retry_wait=bad)
        with pytest.raises(ValueError, match="key_in_use_timeout"):
            AsyncClient(api_key="sk_test_x", base_url="http://127.0.0.1:1", key_in_use_timeout=bad)
        with pytest.raises(ValueError, match="timeout"):
            AsyncClient(api_key="sk_test_x", base_url="http://127.0.0.1:1", timeout=bad)


def _raw(status: int, body: bytes, content_type: str = "application/json") -> web.Response:
    return web.Response(status=status, body=body, content_type=content_type)


CHANNEL_WITH_ODD_FIELDS = (
    b'{"error": {"type": "channel_error", "message": "declined", "code": 7, '
    b'"param": ["amount"], "payment_id": {"id": 1}, "refund_id": null}}'
)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (_raw(500, b"<html><h1>Internal Server Error</h1></html>", "text/html"), APIError),
        (_raw(400, b'{"error": {"type": "invalid_request_error", "mess'), InvalidRequestError),
        (_raw(400, b"[1, 2, 3]"), InvalidRequestError),
        (_raw(400, b'"just a string"'), InvalidRequestError),
        (_raw(400, b'{"error": "boom"}'), InvalidRequestError),
        (_raw(400, b'{"error": {"message": 5}}'), InvalidRequestError),
        (_raw(404, b"[" * 100_000), NotFoundError),
        (_raw(422, b'\xff\xfe{"error"'), InvalidRequestError),
        (_raw(503, b"9" * 5000), APIError),
        (_raw(418, b""), APIError),
        (_raw(402, CHANNEL_WITH_ODD_FIELDS), ChannelError),
    ],
)
async def test_any_error_body_is_a_typed_error(
    server: Scripted, answer: web.Response, expected: type[PayrouterError]
) -> None:
    server.script = [answer]
    with pytest.raises(PayrouterError) as caught:
        await create(client_of(server, max_retries=0))
    assert type(caught.value) is expected
    assert caught.value.status == answer.status
    assert str(caught.value)
    for name in ("type", "code", "param", "request_id"):
        assert getattr(caught.value, name) is None or isinstance(getattr(caught.value, name), str)


async def test_fields_of_the_wrong_type_are_treated_as_absent(server: Scripted) -> None:
    server.script = [_raw(402, CHANNEL_WITH_ODD_FIELDS)]
    with pytest.raises(ChannelError) as caught:
        await create(client_of(server, max_retries=0))
    error = caught.value
    assert error.message == "declined"
    assert (error.code, error.param, error.payment_id) == (None, None, None)
    assert str(error) == "402 declined"


@pytest.mark.parametrize(
    "body",
    [b"<html>ok</html>", b"[1, 2]", b'{"id": "pay_', b"[" * 100_000, b"", b"null", b"\xff\xfe"],
)
async def test_any_success_body_that_is_not_the_object_is_an_api_error(
    server: Scripted, body: bytes
) -> None:
    server.script = [_raw(201, body)]
    with pytest.raises(APIError) as caught:
        await create(client_of(server, max_retries=0))
    assert str(caught.value)


async def test_a_body_cut_off_in_transfer_is_a_connection_error_and_retried(
    server: Scripted,
) -> None:
    server.script = ["truncate", "truncate"]
    with pytest.raises(APIConnectionError):
        await create(client_of(server, max_retries=1))
    assert len(server.seen) == 2
    server.script = ["truncate"]
    payment = await create(client_of(server))
    assert payment.id == PAYMENT["id"]


async def test_rate_limit_with_an_unreadable_retry_after_has_no_wait(server: Scripted) -> None:
    limited = _raw(429, b'{"error": {"type": "rate_limit_error", "message": "slow down"}}')
    limited.headers["Retry-After"] = "inf"
    server.script = [limited]
    with pytest.raises(RateLimitError) as caught:
        await create(client_of(server, max_retries=0))
    assert caught.value.retry_after is None
    # A client that retries waits its own backoff instead, and tries again.
    server.script = [limited]
    await create(client_of(server))
    assert len(server.seen) == 3
