"""Retries against a scripted server on loopback: what is retried, how often, with what keys."""

from __future__ import annotations

import uuid

import pytest
from aiohttp import web

from payrouter_sdk import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AsyncClient,
    ChannelError,
    IdempotencyError,
    InvalidRequestError,
    PayrouterError,
    RateLimitError,
)
from router.api.auth import sign
from tests.sdk.scripted import (
    PAYMENT,
    SECRET,
    Scripted,
    client_of,
    create,
    error,
    in_use,
    unavailable,
)


async def test_5xx_retried_with_one_automatic_idempotency_key(server: Scripted) -> None:
    server.script = [unavailable(), unavailable()]
    payment = await create(client_of(server))
    assert payment.id == PAYMENT["id"]
    keys = server.keys()
    assert len(keys) == 3 and len(set(keys)) == 1
    assert uuid.UUID(str(keys[0])).version == 4
    assert len({s.body for s in server.seen}) == 1


async def test_a_new_call_gets_a_new_key(server: Scripted) -> None:
    await create(client_of(server))
    await create(client_of(server))
    first, second = server.keys()
    assert first != second


async def test_signed_retries_keep_the_key_and_sign_each_attempt_afresh(
    server: Scripted,
) -> None:
    server.script = [unavailable(), error(500, "api_error", "internal_error")]
    await create(client_of(server, signing_key_id="key_test1"), idempotency_key="order-A1")
    assert server.keys() == ["order-A1"] * 3
    nonces = {s.headers["X-Payrouter-Nonce"] for s in server.seen}
    assert len(nonces) == 3
    for seen in server.seen:
        headers = seen.headers
        assert "Authorization" not in headers
        assert headers["X-Payrouter-Key-Id"] == "key_test1"
        expected = sign(
            SECRET,
            seen.method,
            seen.path,
            headers["X-Payrouter-Timestamp"],
            headers["X-Payrouter-Nonce"],
            seen.body,
        )
        assert headers["X-Payrouter-Signature"] == expected


async def test_other_4xx_are_not_retried(server: Scripted) -> None:
    server.script = [error(400, "invalid_request_error", "parameter_invalid", param="amount")]
    with pytest.raises(InvalidRequestError) as caught:
        await create(client_of(server))
    assert (caught.value.param, caught.value.request_id) == ("amount", "req_parameter_invalid")
    assert len(server.seen) == 1


async def test_key_in_use_is_retried(server: Scripted) -> None:
    server.script = [error(409, "idempotency_error", "idempotency_key_in_use")]
    await create(client_of(server))
    assert len(server.seen) == 2


async def test_key_in_use_is_waited_out_as_announced_beyond_max_retries(
    server: Scripted,
) -> None:
    """A crashed attempt holds the key until its lease ends: the router says how long, and
    the SDK waits that long each time with the same key, however many times it is told."""
    server.script = [in_use("1") for _ in range(2)]
    payment = await create(client_of(server, max_retries=0), idempotency_key="order-A1")
    assert payment.id == PAYMENT["id"]
    assert server.keys() == ["order-A1"] * 3
    gaps = [b.at - a.at for a, b in zip(server.seen, server.seen[1:], strict=False)]
    assert all(gap >= 0.95 for gap in gaps)


async def test_key_in_use_is_waited_for_only_within_its_budget(server: Scripted) -> None:
    server.script = [in_use("1") for _ in range(5)]
    with pytest.raises(IdempotencyError) as caught:
        await create(client_of(server, key_in_use_timeout=2.5))
    assert caught.value.code == "idempotency_key_in_use"
    assert len(server.seen) == 3  # waited 1 + 1; a third wait would pass 2.5 s


async def test_key_in_use_longer_than_the_budget_is_raised_at_once(server: Scripted) -> None:
    server.script = [in_use("30")]
    with pytest.raises(IdempotencyError) as caught:
        await create(client_of(server, key_in_use_timeout=5.0))
    assert caught.value.headers["retry-after"] == "30"
    assert len(server.seen) == 1


async def test_duplicate_order_is_not_retried(server: Scripted) -> None:
    server.script = [error(409, "invalid_request_error", "duplicate_order")]
    with pytest.raises(InvalidRequestError):
        await create(client_of(server))
    assert len(server.seen) == 1


async def test_key_reused_with_another_body_is_not_retried(server: Scripted) -> None:
    server.script = [error(422, "idempotency_error", "idempotency_key_reused")]
    with pytest.raises(IdempotencyError):
        await create(client_of(server))
    assert len(server.seen) == 1


async def test_final_channel_answers_are_not_retried(server: Scripted) -> None:
    server.script = [
        error(502, "channel_error", "channel_outcome_unknown", payment_id="pay_0123456789abcdef")
    ]
    with pytest.raises(ChannelError) as caught:
        await create(client_of(server))
    assert caught.value.payment_id == "pay_0123456789abcdef"
    assert len(server.seen) == 1


async def test_channel_unavailable_is_retried(server: Scripted) -> None:
    server.script = [error(503, "channel_error", "channel_unavailable")]
    await create(client_of(server))
    assert len(server.seen) == 2


async def test_gives_up_after_max_retries(server: Scripted) -> None:
    server.script = [unavailable() for _ in range(5)]
    with pytest.raises(APIError) as caught:
        await create(client_of(server))
    assert caught.value.status == 503
    assert len(server.seen) == 3
    with pytest.raises(APIError):
        await create(client_of(server, max_retries=0))
    assert len(server.seen) == 4


async def test_retry_after_is_honoured(server: Scripted) -> None:
    server.script = [unavailable(retry_after="1")]
    await create(client_of(server))
    first, second = server.seen
    assert second.at - first.at >= 0.95


async def test_retry_after_beyond_the_limit_is_not_waited_for(server: Scripted) -> None:
    server.script = [unavailable(retry_after="3600")]
    with pytest.raises(APIError) as caught:
        await create(client_of(server))
    assert caught.value.headers["retry-after"] == "3600"
    assert len(server.seen) == 1


async def test_a_rate_limit_is_waited_out_as_retry_after_says(server: Scripted) -> None:
    limited = error(429, "rate_limit_error", "rate_limited")
    limited.headers["Retry-After"] = "1"
    server.script = [limited]
    await create(client_of(server))
    first, second = server.seen
    assert second.at - first.at >= 0.95
    assert len(set(server.keys())) == 1


async def test_a_rate_limit_beyond_the_longest_wait_is_raised_with_it(server: Scripted) -> None:
    limited = error(429, "rate_limit_error", "rate_limited")
    limited.headers["Retry-After"] = "3600"
    server.script = [limited]
    with pytest.raises(RateLimitError) as caught:
        await create(client_of(server))
    assert caught.value.retry_after == 3600.0
    assert len(server.seen) == 1


async def test_timeout_is_retried_with_the_same_key(server: Scripted) -> None:
    server.script = ["hang"]
    await create(client_of(server, timeout=0.3))
    assert len(server.seen) == 2
    assert len(set(server.keys())) == 1


async def test_timeouts_exhausted(server: Scripted) -> None:
    server.script = ["hang", "hang"]
    with pytest.raises(APITimeoutError) as caught:
        await create(client_of(server, timeout=0.2, max_retries=1))
    assert isinstance(caught.value, APIConnectionError)
    assert len(server.seen) == 2


async def test_connection_reset_is_retried(server: Scripted) -> None:
    server.script = ["reset", "reset"]
    await create(client_of(server))
    assert len(server.seen) == 3
    assert len(set(server.keys())) == 1


async def test_get_is_retried_without_a_key(server: Scripted) -> None:
    server.script = [unavailable(), "reset"]
    async with client_of(server) as client:
        payment = await client.payments.get("pay_0123456789abcdef")
    assert payment.status == "pending"
    assert [s.path for s in server.seen] == ["/v1/payments/pay_0123456789abcdef"] * 3
    assert server.keys() == [None, None, None]


async def test_an_answer_that_is_not_the_api_error_is_an_api_error(server: Scripted) -> None:
    server.script = [web.Response(status=502, text="<html>Bad Gateway</html>") for _ in range(3)]
    with pytest.raises(APIError) as caught:
        await create(client_of(server))
    assert caught.value.status == 502
    assert "Bad Gateway" in str(caught.value)
    assert len(server.seen) == 3


def test_backoff_grows_with_jitter_and_a_cap() -> None:
    client = AsyncClient(api_key=SECRET, base_url="http://127.0.0.1:1", max_retries=10)
    failure = PayrouterError("boom", status=503)
    for attempt in range(10):
        delay = client._retry_delay(attempt, failure)
        full = min(8.0, 0.5 * 2**attempt)
        assert delay is not None and full / 2 <= delay <= full
    assert client._retry_delay(10, failure) is None


async def test_ids_cannot_leave_their_path_segment(server: Scripted) -> None:
    async with client_of(server) as client:
        await client.payments.get("../refunds/re_1?x=1")
    assert server.seen[0].path == "/v1/payments/..%2Frefunds%2Fre_1%3Fx%3D1"


async def test_redirects_are_not_followed(server: Scripted) -> None:
    server.script = [web.Response(status=307, headers={"Location": "http://127.0.0.1:9/v1"})]
    with pytest.raises(APIError) as caught:
        await create(client_of(server))
    assert caught.value.status == 307
    assert len(server.seen) == 1
