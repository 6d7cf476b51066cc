"""Merchant authentication: bearer keys and signed requests.

Signed requests carry `X-Payrouter-Key-Id`, `X-Payrouter-Timestamp` (unix seconds),
`X-Payrouter-Nonce` and `X-Payrouter-Signature` =
base64(HMAC-SHA256(secret, METHOD\\npath_with_query\\ntimestamp\\nnonce\\nhex(sha256(body))\\n)).
The timestamp must be within ±300 s and a nonce is accepted once inside that window.

Header values are read by `read_bearer` and `read_signed_headers`, pure functions that accept
only the documented ASCII shapes and raise `AuthenticationFailed` for anything else: a header
is whatever a client sent (Unicode digits such as `²`, undecodable bytes, 5000-digit
numbers), and none of it may reach `int()` or the store unchecked.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

from router.errors import AuthenticationFailed, PermissionDenied
from router.store import Store
from router.store.merchants import ApiKey, Merchant

WINDOW_S = 300
NONCE_TTL_S = 2 * WINDOW_S + 60
"""A nonce must stay remembered for as long as its timestamp could still be accepted."""
NONCE_PATTERN = re.compile(r"[A-Za-z0-9_\-]{8,64}")
TIMESTAMP_PATTERN = re.compile(r"[0-9]{1,12}")
"""ASCII digits only (`str.isdigit` also takes `²` and `٣`), and few enough for `int()`."""
KEY_ID_PATTERN = re.compile(r"key_[A-Za-z0-9]{8,64}")
SECRET_PATTERN = re.compile(r"sk_(?:test|live)_[A-Za-z0-9_\-]{8,128}")
SIGNED_HEADERS = (
    "X-Payrouter-Key-Id",
    "X-Payrouter-Timestamp",
    "X-Payrouter-Nonce",
    "X-Payrouter-Signature",
)


@dataclass(frozen=True)
class Principal:
    merchant: Merchant
    key: ApiKey

    @property
    def livemode(self) -> bool:
        return self.key.mode == "live"


def signing_string(
    method: str, path_with_query: str, timestamp: str, nonce: str, body: bytes
) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return f"{method.upper()}\n{path_with_query}\n{timestamp}\n{nonce}\n{digest}\n".encode()


def sign(
    secret: str, method: str, path_with_query: str, timestamp: str, nonce: str, body: bytes
) -> str:
    """The `X-Payrouter-Signature` value; merchants' SDKs compute the same."""
    mac = hmac.new(
        secret.encode(),
        signing_string(method, path_with_query, timestamp, nonce, body),
        hashlib.sha256,
    )
    return base64.b64encode(mac.digest()).decode()


@dataclass(frozen=True)
class SignedHeaders:
    """The four `X-Payrouter-*` headers of a signed request, checked for shape."""

    key_id: str
    timestamp: str
    nonce: str
    signature: bytes


def read_bearer(header: str | None) -> str:
    """The secret of an `Authorization: Bearer sk_...` header. Raises `AuthenticationFailed`."""
    if header is None:
        raise AuthenticationFailed(
            "missing_credentials",
            "Send 'Authorization: Bearer sk_...' or a signed request (X-Payrouter-* headers)",
            param="Authorization",
        )
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret.startswith(("sk_test_", "sk_live_")):
        raise AuthenticationFailed(
            "invalid_authorization", "Authorization must be 'Bearer sk_...'", param="Authorization"
        )
    if not SECRET_PATTERN.fullmatch(secret):
        # No key has this shape: refused like an unknown key, without asking the store.
        raise AuthenticationFailed("invalid_api_key", "Invalid API key", param="Authorization")
    return secret


def read_signed_headers(headers: Mapping[str, str], now: float) -> SignedHeaders:
    """The signed-request headers, each of its documented shape, the timestamp within the
    window. Raises `AuthenticationFailed` naming the header at fault."""
    values = {}
    for name in SIGNED_HEADERS:
        value = headers.get(name)
        if not value:
            raise AuthenticationFailed(
                "missing_signature_header", f"Signed requests need the {name} header", param=name
            )
        values[name] = value
    key_id, timestamp, nonce, signature = (values[n] for n in SIGNED_HEADERS)
    if not TIMESTAMP_PATTERN.fullmatch(timestamp):
        raise AuthenticationFailed(
            "invalid_timestamp",
            "X-Payrouter-Timestamp must be unix seconds (ASCII digits)",
            param="X-Payrouter-Timestamp",
        )
    if abs(int(timestamp) - now) > WINDOW_S:
        raise AuthenticationFailed(
            "timestamp_out_of_window",
            f"X-Payrouter-Timestamp is more than {WINDOW_S} s from the server's clock",
            param="X-Payrouter-Timestamp",
        )
    if not NONCE_PATTERN.fullmatch(nonce):
        raise AuthenticationFailed(
            "invalid_nonce",
            "X-Payrouter-Nonce must be 8 to 64 letters, digits, - or _",
            param="X-Payrouter-Nonce",
        )
    if not KEY_ID_PATTERN.fullmatch(key_id):
        raise AuthenticationFailed(
            "invalid_api_key", "Unknown X-Payrouter-Key-Id", param="X-Payrouter-Key-Id"
        )
    try:
        given = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        given = b""
    return SignedHeaders(key_id, timestamp, nonce, given)


async def authenticate(request: web.Request, store: Store, now: float) -> Principal:
    if "X-Payrouter-Signature" in request.headers or "X-Payrouter-Key-Id" in request.headers:
        return await _signed(request, store, now)
    secret = read_bearer(request.headers.get("Authorization"))
    key = await store.merchants.key_for_secret(secret)
    principal = await _principal(key, store, now, param="Authorization")
    if principal.merchant.require_signed:
        raise AuthenticationFailed(
            "signature_required",
            "This merchant accepts signed requests only (X-Payrouter-* headers)",
            param="Authorization",
        )
    return principal


async def _signed(request: web.Request, store: Store, now: float) -> Principal:
    signed = read_signed_headers(request.headers, now)
    key = await store.merchants.key(signed.key_id)
    secret = await store.merchants.signing_secret(signed.key_id) if key is not None else None
    if key is None or secret is None:
        raise AuthenticationFailed(
            "invalid_api_key", "Unknown X-Payrouter-Key-Id", param="X-Payrouter-Key-Id"
        )
    body = await request.read()
    expected = sign(secret, request.method, request.raw_path, signed.timestamp, signed.nonce, body)
    if not hmac.compare_digest(base64.b64decode(expected), signed.signature):
        raise AuthenticationFailed(
            "invalid_signature",
            "X-Payrouter-Signature does not match the request",
            param="X-Payrouter-Signature",
        )
    principal = await _principal(key, store, now, param="X-Payrouter-Key-Id")
    if not await store.merchants.use_nonce(principal.merchant.id, signed.nonce, NONCE_TTL_S):
        raise AuthenticationFailed(
            "nonce_reused", "X-Payrouter-Nonce was already used", param="X-Payrouter-Nonce"
        )
    return principal


async def _principal(key: ApiKey | None, store: Store, now: float, *, param: str) -> Principal:
    if key is None:
        raise AuthenticationFailed("invalid_api_key", "Invalid API key", param=param)
    if not key.active(int(now * 1000)):
        raise AuthenticationFailed(
            "api_key_expired", f"API key {key.id} was rotated and has expired", param=param
        )
    if key.mode == "live" and not store.merchants.allow_live:
        raise PermissionDenied(
            "live_key_in_sandbox", "The embedded store accepts test keys only", param=param
        )
    merchant = await store.merchants.get(key.merchant_id)
    if merchant is None:
        raise AuthenticationFailed("invalid_api_key", "Invalid API key", param=param)
    return Principal(merchant, key)
