"""Alipay OpenAPI RSA2 signatures. Pure functions, no I/O.

- Requests: every parameter but `sign`, empty values dropped, sorted by key, `k=v` joined with
  `&` (values as they are, not URL-encoded), signed SHA256withRSA (PKCS#1 v1.5) with the app's
  private key, base64.
- Answers: `{"<method with dots as _>_response": {...}, "sign": "..."}`; the signature (Alipay's
  key) covers the exact bytes of the `_response` object as they stand in the body. Clients
  must cut that object out of the body rather than re-serialise it: key order, spacing and
  escapes are Alipay's, not the client's JSON library's.
- Notifications (form posts): every field but `sign` and `sign_type`, sorted, `k=v` with `&`.

Keys are PEM (PKCS#8, PKCS#1 or SubjectPublicKeyInfo) or, as Alipay's console hands them out,
the bare base64 body of one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from channels.rsa import private_key_pem as private_key_pem
from channels.rsa import public_key_pem as public_key_pem
from channels.rsa import sign, verify

rsa2_sign = sign
"""RSA2 is Alipay's name for base64 SHA256withRSA, the primitive shared in `channels.rsa`."""

SIGN_TYPE = "RSA2"
ERROR_RESPONSE = "error_response"


class VerificationError(Exception):
    """A signature that does not check out, or a body it cannot be checked on."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        """`signature` or `malformed`."""
        self.message = message


def _pem(text: str, label: str) -> bytes:
    stripped = text.strip()
    if stripped.startswith("-----BEGIN"):
        return stripped.encode()
    body = "".join(stripped.split())
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return (f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n").encode()


def load_private_key(text: str) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM or bare base64 (PKCS#8 or PKCS#1). Raises `ValueError`."""
    candidates = [_pem(text, "PRIVATE KEY"), _pem(text, "RSA PRIVATE KEY")]
    for data in candidates:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            continue
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("not an RSA private key")
        return key
    raise ValueError("not a PEM or base64 RSA private key")


def load_public_key(text: str) -> rsa.RSAPublicKey:
    """An RSA public key from PEM or bare base64 (SubjectPublicKeyInfo). Raises `ValueError`."""
    try:
        key = serialization.load_pem_public_key(_pem(text, "PUBLIC KEY"))
    except (ValueError, TypeError) as exc:
        raise ValueError("not a PEM or base64 public key") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def rsa2_verify(key: rsa.RSAPublicKey, message: bytes, signature: str) -> bool:
    """Whether `signature` verifies; whitespace in it is dropped, as Alipay wraps long values."""
    return verify(key, message, "".join(signature.split()))


def request_signing_string(params: Mapping[str, str]) -> str:
    """What a request signature covers: all but `sign`, empty values dropped, sorted."""
    items = sorted((k, v) for k, v in params.items() if k != "sign" and v != "")
    return "&".join(f"{k}={v}" for k, v in items)


def notification_signing_string(fields: Mapping[str, str]) -> str:
    """What a notification signature covers: all fields but `sign` and `sign_type`, sorted."""
    items = sorted((k, v) for k, v in fields.items() if k not in ("sign", "sign_type"))
    return "&".join(f"{k}={v}" for k, v in items)


def sign_request(key: rsa.RSAPrivateKey, params: Mapping[str, str]) -> dict[str, str]:
    """`params` with empty values dropped and `sign` added."""
    signed = {k: v for k, v in params.items() if v != "" and k != "sign"}
    signed["sign"] = rsa2_sign(key, request_signing_string(signed).encode())
    return signed


def verify_request(key: rsa.RSAPublicKey, params: Mapping[str, str]) -> bool:
    signature = params.get("sign", "")
    return bool(signature) and rsa2_verify(key, request_signing_string(params).encode(), signature)


def sign_notification(key: rsa.RSAPrivateKey, fields: Mapping[str, str]) -> dict[str, str]:
    """`fields` with `sign_type=RSA2` and `sign` added."""
    signed = {k: v for k, v in fields.items() if k not in ("sign", "sign_type")}
    signature = rsa2_sign(key, notification_signing_string(signed).encode())
    return {**signed, "sign_type": SIGN_TYPE, "sign": signature}


def verify_notification(key: rsa.RSAPublicKey, fields: Mapping[str, str]) -> None:
    """Check a notification's signature. Raises `VerificationError`."""
    sign_type = fields.get("sign_type", SIGN_TYPE)
    if sign_type != SIGN_TYPE:
        raise VerificationError("signature", f"unsupported sign_type {sign_type!r}")
    signature = fields.get("sign")
    if not signature:
        raise VerificationError("signature", "the notification has no sign")
    if not rsa2_verify(key, notification_signing_string(fields).encode(), signature):
        raise VerificationError("signature", "the notification signature does not verify")


def response_key(api_method: str) -> str:
    """`alipay.trade.query` → `alipay_trade_query_response`."""
    return api_method.replace(".", "_") + "_response"


def dump_json(value: Any) -> str:
    """Compact JSON, non-ASCII kept as is: how Alipay writes its objects."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def build_answer(key: rsa.RSAPrivateKey | None, name: str, payload: Mapping[str, Any]) -> bytes:
    """An answer body `{"<name>":{...},"sign":"..."}`; unsigned when `key` is `None`."""
    raw = dump_json(payload)
    body = f'{{"{name}":{raw}'
    if key is not None:
        body += f',"sign":"{rsa2_sign(key, raw.encode())}"'
    return (body + "}").encode()


@dataclass(frozen=True)
class RawMember:
    """One top-level member of a JSON object: its value parsed, and its exact bytes."""

    value: Any
    raw: bytes


def top_level_members(body: bytes) -> dict[str, RawMember]:
    """The top-level members of a JSON object with each value's exact bytes.

    Strings are scanned as JSON strings, so braces or quotes inside them cannot shift a
    boundary. Raises `VerificationError("malformed")` for anything but one JSON object with
    unique keys.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise VerificationError("malformed", "the answer is not UTF-8") from None
    decoder = json.JSONDecoder()
    members: dict[str, RawMember] = {}
    index = _skip_space(text, 0)
    try:
        if text[index] != "{":
            raise ValueError("not an object")
        index = _skip_space(text, index + 1)
        if text[index] == "}":
            index += 1
        else:
            while True:
                if text[index] != '"':
                    raise ValueError("expected a key")
                name, index = decoder.raw_decode(text, index)
                index = _skip_space(text, index)
                if text[index] != ":":
                    raise ValueError("expected ':'")
                start = _skip_space(text, index + 1)
                value, end = decoder.raw_decode(text, start)
                if name in members:
                    raise ValueError(f"duplicate member {name!r}")
                members[name] = RawMember(value, text[start:end].encode("utf-8"))
                index = _skip_space(text, end)
                if text[index] == ",":
                    index = _skip_space(text, index + 1)
                    continue
                if text[index] != "}":
                    raise ValueError("expected ',' or '}'")
                index += 1
                break
        if _skip_space(text, index) != len(text):
            raise ValueError("data after the object")
    except (IndexError, ValueError, RecursionError) as exc:
        raise VerificationError("malformed", f"the answer is not a JSON object: {exc}") from None
    return members


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t\r\n":
        index += 1
    return index


@dataclass(frozen=True)
class SignedAnswer:
    """An answer's `_response` (or `error_response`) object, its exact bytes and `sign`."""

    name: str
    payload: dict[str, Any]
    raw: bytes
    sign: str | None

    def verified(self, key: rsa.RSAPublicKey) -> bool:
        return self.sign is not None and rsa2_verify(key, self.raw, self.sign)


def open_answer(body: bytes, api_method: str) -> SignedAnswer:
    """Find the method's `_response` object (or `error_response`) in an answer body.

    Raises `VerificationError("malformed")` when there is none or it is not an object.
    """
    members = top_level_members(body)
    for name in (response_key(api_method), ERROR_RESPONSE):
        member = members.get(name)
        if member is None:
            continue
        if not isinstance(member.value, dict):
            raise VerificationError("malformed", f"{name} is not an object")
        sign = members.get("sign")
        signature = sign.value if sign is not None and isinstance(sign.value, str) else None
        return SignedAnswer(name, member.value, member.raw, signature or None)
    raise VerificationError("malformed", f"the answer has no {response_key(api_method)}")
