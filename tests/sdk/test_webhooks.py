"""`Webhook`: verification per the Standard Webhooks specification (pure logic; one test puts
it behind a real aiohttp receiver)."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import time
from datetime import UTC, datetime

import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook as Reference

from payrouter_sdk import Event, Payment, PayrouterError, Webhook, WebhookVerificationError
from tests.conftest import loopback_socket, serve

# The Standard Webhooks specification's published example (checked by computing it:
# base64(HMAC-SHA256(b64decode(secret), f"{id}.{timestamp}.{body}"))).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

NOW = 1_750_000_000
SECRET = "whsec_" + base64.b64encode(b"k" * 24).decode()
OTHER = "whsec_" + base64.b64encode(b"o" * 24).decode()
EVENT = {
    "id": "evt_1",
    "type": "payment.succeeded",
    "created_at": "2025-06-15T15:06:40Z",
    "data": {
        "id": "pay_1",
        "object": "payment",
        "merchant_order_id": "A1",
        "amount": 1999,
        "currency": "CNY",
        "method": "qr",
        "status": "succeeded",
        "created_at": "2025-06-15T15:06:00Z",
    },
}
BODY = json.dumps(EVENT).encode()


def at(now: float, secret: str | list[str] = SECRET) -> Webhook:
    return Webhook(secret, clock=lambda: now)


def headers(
    body: bytes = BODY, *, secret: str | list[str] = SECRET, timestamp: int = NOW
) -> dict[str, str]:
    return {
        "webhook-id": "evt_1",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": Webhook(secret).sign("evt_1", timestamp, body),
    }


def refused(webhook: Webhook, body: bytes, sent: dict[str, str]) -> str:
    with pytest.raises(WebhookVerificationError) as caught:
        webhook.verify(body, sent)
    return str(caught.value)


def test_the_specification_example() -> None:
    webhook = at(SPEC_TIMESTAMP, SPEC_SECRET)
    assert webhook.sign(SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE
    sent = {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(SPEC_TIMESTAMP),
        "webhook-signature": SPEC_SIGNATURE,
    }
    # The example body is not an event: its signature checks out, then parsing refuses it.
    assert "not an event" in refused(webhook, SPEC_BODY, sent)
    sent["webhook-signature"] = "v1,h0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert "no signature matches" in refused(webhook, SPEC_BODY, sent)


def test_valid_webhook_gives_the_event() -> None:
    event = at(NOW).verify(BODY, headers())
    assert isinstance(event, Event)
    assert (event.id, event.type, event.data["amount"]) == ("evt_1", "payment.succeeded", 1999)
    payment = event.data_object
    assert isinstance(payment, Payment)
    assert payment.amount == 1999
    assert at(NOW).verify(BODY.decode(), headers()).id == "evt_1"


def test_header_names_in_any_case() -> None:
    sent = {name.title(): value for name, value in headers().items()}
    assert at(NOW).verify(BODY, sent).id == "evt_1"


def test_tampered_body() -> None:
    tampered = BODY.replace(b"1999", b"1")
    assert "no signature matches" in refused(at(NOW), tampered, headers())


def test_tampered_id_or_timestamp() -> None:
    assert "no signature matches" in refused(at(NOW), BODY, headers() | {"webhook-id": "evt_2"})
    moved = headers() | {"webhook-timestamp": str(NOW + 1)}
    assert "no signature matches" in refused(at(NOW), BODY, moved)


def test_wrong_secret() -> None:
    assert "no signature matches" in refused(at(NOW, OTHER), BODY, headers())


def test_old_timestamp() -> None:
    sent = headers(timestamp=NOW - 301)
    assert "too old" in refused(at(NOW), BODY, sent)
    assert at(NOW - 1).verify(BODY, sent).id == "evt_1"


def test_future_timestamp() -> None:
    sent = headers(timestamp=NOW + 301)
    assert "in the future" in refused(at(NOW), BODY, sent)
    assert at(NOW + 1).verify(BODY, sent).id == "evt_1"


def test_tolerance_is_five_minutes_and_adjustable() -> None:
    assert at(NOW + 300).verify(BODY, headers()).id == "evt_1"
    assert at(NOW - 300).verify(BODY, headers()).id == "evt_1"
    strict = Webhook(SECRET, tolerance=10, clock=lambda: NOW + 11)
    assert "too old" in refused(strict, BODY, headers())


def test_timestamp_must_be_unix_seconds() -> None:
    sent = headers() | {"webhook-timestamp": "2025-06-15T15:06:40Z"}
    assert "not unix seconds" in refused(at(NOW), BODY, sent)


def test_any_one_of_several_signatures_passes() -> None:
    good = headers()["webhook-signature"]
    wrong = headers(secret=OTHER)["webhook-signature"]
    sent = headers() | {"webhook-signature": f"v1,bm90IGEgc2lnbmF0dXJl {wrong} v1a,xyz {good}"}
    assert at(NOW).verify(BODY, sent).id == "evt_1"


def test_rotation_sender_signs_with_both_secrets() -> None:
    both = headers(secret=[SECRET, OTHER])
    assert len(both["webhook-signature"].split()) == 2
    assert at(NOW, SECRET).verify(BODY, both).id == "evt_1"
    assert at(NOW, OTHER).verify(BODY, both).id == "evt_1"


def test_rotation_receiver_accepts_old_and_new() -> None:
    receiver = at(NOW, [OTHER, SECRET])
    assert receiver.verify(BODY, headers(secret=SECRET)).id == "evt_1"
    assert receiver.verify(BODY, headers(secret=OTHER)).id == "evt_1"
    third = "whsec_" + base64.b64encode(b"t" * 24).decode()
    assert "no signature matches" in refused(receiver, BODY, headers(secret=third))


def test_only_v1_signatures_count() -> None:
    value = headers()["webhook-signature"].removeprefix("v1,")
    sent = headers() | {"webhook-signature": f"v2,{value} v1a,{value}"}
    assert "no v1 signature" in refused(at(NOW), BODY, sent)


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header(name: str) -> None:
    sent = {k: v for k, v in headers().items() if k != name}
    assert f"missing {name}" in refused(at(NOW), BODY, sent)


def test_signed_body_that_is_not_an_event() -> None:
    body = b'{"hello": "world"}'
    assert "not an event" in refused(at(NOW), body, headers(body))


def test_verification_error_is_a_payrouter_error() -> None:
    assert issubclass(WebhookVerificationError, PayrouterError)


@pytest.mark.parametrize("secret", ["whsec_not base64!", "whsec_", []])
def test_bad_secrets_are_refused_up_front(secret: str | list[str]) -> None:
    with pytest.raises(ValueError, match="secret"):
        Webhook(secret)


def test_secret_without_prefix_is_accepted() -> None:
    bare = SECRET.removeprefix("whsec_")
    assert at(NOW, bare).verify(BODY, headers()).id == "evt_1"


def test_agrees_with_the_reference_library() -> None:
    """Signed by the SDK, verified by `standardwebhooks`, and the other way round."""
    now = int(time.time())
    assert Reference(SECRET).verify(BODY, headers(timestamp=now))["id"] == "evt_1"
    theirs = Reference(SECRET).sign("evt_1", datetime.fromtimestamp(now, UTC), BODY.decode())
    sent = {"webhook-id": "evt_1", "webhook-timestamp": str(now), "webhook-signature": theirs}
    assert Webhook(SECRET).verify(BODY, sent).id == "evt_1"


def test_timestamp_of_thousands_of_digits_is_refused_not_raised() -> None:
    sent = headers() | {"webhook-timestamp": "9" * 5000}
    assert "not unix seconds" in refused(at(NOW), BODY, sent)


def test_signed_body_nested_past_the_parser_is_not_an_event() -> None:
    body = b"[" * 100_000
    assert "not an event" in refused(at(NOW), body, headers(body))


@pytest.mark.parametrize("tolerance", [-1.0, math.inf, math.nan])
def test_tolerance_must_be_seconds(tolerance: float) -> None:
    with pytest.raises(ValueError, match="tolerance"):
        Webhook(SECRET, tolerance=tolerance)


async def test_undecodable_header_bytes_reach_a_receiver_as_a_refusal(
    serving: list[web.AppRunner],
) -> None:
    """A receiver written as the README shows answers 400 to forged bytes, never 500: aiohttp
    hands undecodable header bytes over as surrogates, which cannot be encoded as UTF-8."""
    webhook = Webhook(SECRET)

    async def receive(request: web.Request) -> web.Response:
        try:
            webhook.verify(await request.read(), request.headers)
        except WebhookVerificationError:
            return web.Response(status=400)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", receive)
    sock = loopback_socket()
    serving.append(await serve(app, sock))
    host, port = sock.getsockname()[:2]
    reader, writer = await asyncio.open_connection(host, port)
    sent = headers(timestamp=int(time.time()))
    head = (
        b"POST /hook HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        + b"webhook-id: evt_\xff\xfe\r\n"
        + f"webhook-timestamp: {sent['webhook-timestamp']}\r\n".encode()
        + f"webhook-signature: {sent['webhook-signature']}\r\n".encode()
        + f"Content-Length: {len(BODY)}\r\n\r\n".encode()
    )
    writer.write(head + BODY)
    status_line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    assert status_line.split()[1] == b"400"
