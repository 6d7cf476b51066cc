"""Merchant authentication headers of any text: a checked value or `AuthenticationFailed`.

Headers are whatever a client sent; aiohttp hands undecodable bytes over as surrogate escapes.
`read_bearer` and `read_signed_headers` must turn every one of them into either a value of the
documented ASCII shape or a 401, never another exception (a 500 with a traceback).
"""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.api.auth import (
    KEY_ID_PATTERN,
    NONCE_PATTERN,
    SECRET_PATTERN,
    SIGNED_HEADERS,
    WINDOW_S,
    read_bearer,
    read_signed_headers,
)
from router.errors import AuthenticationFailed

NOW = time.time()
GOOD = {
    "X-Payrouter-Key-Id": "key_AbCdEfGh12345678",
    "X-Payrouter-Timestamp": str(int(NOW)),
    "X-Payrouter-Nonce": "nonce-0001",
    "X-Payrouter-Signature": "c2lnbmF0dXJl",
}

header_text = st.one_of(
    st.text(max_size=60),
    st.binary(max_size=60).map(lambda raw: raw.decode("utf-8", "surrogateescape")),
    st.sampled_from(["²", "٣٣", "１７", "9" * 5000, str(int(NOW)) + "\n", "1_0", "+1", "1e3"]),
    st.sampled_from(list(GOOD.values())),
)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(SIGNED_HEADERS), value=header_text, others=st.booleans())
def test_signed_headers_of_any_text(name: str, value: str, others: bool) -> None:
    headers = (dict(GOOD) if others else {}) | {name: value}
    refusal: AuthenticationFailed | None = None
    try:
        signed = read_signed_headers(headers, NOW)
    except AuthenticationFailed as exc:
        refusal = exc
    if refusal is not None:
        assert (refusal.status, refusal.param in SIGNED_HEADERS) == (401, True)
        return
    assert KEY_ID_PATTERN.fullmatch(signed.key_id)
    assert NONCE_PATTERN.fullmatch(signed.nonce)
    assert signed.timestamp.isascii() and abs(int(signed.timestamp) - NOW) <= WINDOW_S


@settings(max_examples=300, deadline=None)
@given(
    value=st.one_of(
        st.none(),
        header_text,
        header_text.map(lambda text: "Bearer " + text),
        header_text.map(lambda text: "Bearer sk_test_" + text),
    )
)
def test_bearer_header_of_any_text(value: str | None) -> None:
    refusal: AuthenticationFailed | None = None
    try:
        secret = read_bearer(value)
    except AuthenticationFailed as exc:
        refusal = exc
    if refusal is not None:
        assert (refusal.status, refusal.param) == (401, "Authorization")
        return
    assert SECRET_PATTERN.fullmatch(secret)


@pytest.mark.parametrize("timestamp", ["²", "٣٣", "１７", "9" * 5000, "1.5"])
def test_a_timestamp_that_is_not_ascii_seconds_is_invalid(timestamp: str) -> None:
    with pytest.raises(AuthenticationFailed) as caught:
        read_signed_headers(GOOD | {"X-Payrouter-Timestamp": timestamp}, NOW)
    assert (caught.value.code, caught.value.param) == ("invalid_timestamp", "X-Payrouter-Timestamp")
