"""Odd bytes through real HTTP: a clean 4xx or a refused notification, never a 500, a
traceback or a secret in the log.

Raw sockets send what no HTTP client library would: Unicode digits, undecodable bytes, control
characters and over-long lines in headers.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from router.api.auth import sign
from tests.e2e.conftest import ADMIN_TOKEN, Router, Simulator
from tests.e2e.test_notifications import notification, post, refused, transaction


async def raw_exchange(router: Router, request: bytes) -> bytes:
    """Send `request` as is and read the answer until the server closes the connection."""
    host, _, port = router.url.removeprefix("http://").partition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        return await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()


def get(path: str, *header_lines: bytes) -> bytes:
    head = [f"GET {path} HTTP/1.1".encode(), b"Host: 127.0.0.1", b"Connection: close"]
    return b"\r\n".join([*head, *header_lines, b"", b""])


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_text]
    assert not bad, [r.getMessage() for r in bad]


@pytest.mark.parametrize("timestamp", ["²", "٣٣", "9" * 5000])
async def test_signed_request_with_unicode_digit_timestamp_is_401(
    router: Router, caplog: pytest.LogCaptureFixture, timestamp: str
) -> None:
    caplog.set_level(logging.DEBUG)
    headers = {
        "X-Payrouter-Key-Id": router.key_id,
        "X-Payrouter-Timestamp": timestamp,
        "X-Payrouter-Nonce": "nonce-unicode-1",
        "X-Payrouter-Signature": sign(
            router.secret, "GET", "/v1/payments", timestamp, "nonce-unicode-1", b""
        ),
    }
    async with router.http.get(f"{router.url}/v1/payments", headers=headers) as resp:
        assert resp.status == 401
        error = (await resp.json())["error"]
    assert (error["code"], error["param"]) == ("invalid_timestamp", "X-Payrouter-Timestamp")
    no_errors_logged(caplog)


@pytest.mark.parametrize(
    "line",
    [
        b"Authorization: Bearer sk_test_\xff\xfe",
        b"Authorization: Bearer sk_test_\xc2\xb2\xc2\xb2\xc2\xb2\xc2\xb2\xc2\xb2",
        b"X-Payrouter-Key-Id: key_\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8",
    ],
)
async def test_undecodable_credentials_are_401(
    router: Router, caplog: pytest.LogCaptureFixture, line: bytes
) -> None:
    caplog.set_level(logging.DEBUG)
    stamp = str(int(router.clock.now())).encode()
    signed = [b"X-Payrouter-Timestamp: " + stamp, b"X-Payrouter-Nonce: nonce-bytes-1"]
    extra = [*signed, b"X-Payrouter-Signature: eA=="] if b"Key-Id" in line else []
    answer = await raw_exchange(router, get("/v1/payments", line, *extra))
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]
    no_errors_logged(caplog)


async def test_wechat_notification_with_unicode_digit_timestamp_is_refused(
    router: Router, simulator: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _, created = await router.create(amount=500)
    body, headers = notification(simulator, transaction(simulator, created["id"], 500))
    headers["Wechatpay-Timestamp"] = "²"
    async with router.http.post(
        f"{router.url}/v1/notify/wechat_main", data=body, headers=headers
    ) as resp:
        # WeChat's own "failed, send again" answer, not the router's internal error.
        assert await resp.json() == {"code": "FAIL", "message": "失败"}
    assert refused(router, "malformed") == 1
    assert (await router.payment(created["id"]))["status"] == "pending"
    no_errors_logged(caplog)
    headers["Wechatpay-Timestamp"] = str(int(time.time()))
    assert await post(router, body, headers) == 200


SECRET_TAIL = "Zq3Vb7Lm2Xc9Nw4Rt8Yp1Hs6Kd5Fg0Ju"


@pytest.mark.parametrize(
    "lines",
    [
        [f"Authorization: Bearer sk_live_{SECRET_TAIL}".encode() + b"\x01"],
        [f"Authorization: Bearer sk_test_{SECRET_TAIL}".encode() + b"x" * 9000],
        [b"X-Filler: " + b"y" * 9000, f"Authorization: Bearer sk_test_{SECRET_TAIL}".encode()],
        [f"Authorization: Bearer {ADMIN_TOKEN}".encode() + b"\x7f"],
        [f"X-Webhook: whsec_{SECRET_TAIL}".encode() + b"\x00"],
    ],
    ids=["control-char", "over-long", "after-over-long", "admin-token", "whsec"],
)
async def test_unparsable_header_with_a_secret_reaches_no_log_and_no_answer(
    router: Router, caplog: pytest.LogCaptureFixture, lines: list[bytes]
) -> None:
    caplog.set_level(logging.DEBUG)
    answer = await raw_exchange(router, get("/v1/payments", *lines))
    assert answer.startswith(b"HTTP/1.0 400 "), answer[:200]
    assert SECRET_TAIL.encode() not in answer and ADMIN_TOKEN.encode() not in answer
    assert caplog.records, "the refused request is logged"
    for record in caplog.records:
        shown = logging.Formatter().format(record)
        assert SECRET_TAIL not in shown and ADMIN_TOKEN not in shown, shown
    assert SECRET_TAIL not in caplog.text and ADMIN_TOKEN not in caplog.text


async def test_admin_token_with_undecodable_bytes_is_401(
    router: Router, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answer = await raw_exchange(router, get("/admin/channels", b"Authorization: Bearer \xff\xfe"))
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]
    no_errors_logged(caplog)
