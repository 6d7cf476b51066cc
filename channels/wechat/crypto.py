"""WeChat Pay API v3 signatures and resource encryption. Pure functions, no I/O.

- Requests carry `Authorization: WECHATPAY2-SHA256-RSA2048 mchid="",nonce_str="",
  signature="",timestamp="",serial_no=""`, the signature being base64 SHA256withRSA
  (PKCS#1 v1.5) with the merchant key over `METHOD\\nPATH_WITH_QUERY\\ntimestamp\\nnonce\\nBODY\\n`.
- Answers and notifications carry `Wechatpay-Timestamp`, `-Nonce`, `-Signature`, `-Serial`
  (the platform public key id) and `-Signature-Type`, signed with the platform key over
  `timestamp\\nnonce\\nBODY\\n`.
- The buyer-side pay-sign parameters (jsapi `paySign` over `appId\ntimeStamp\nnonceStr\n
  package\n`, app `sign` over `appid\ntimestamp\nnoncestr\nprepayid\n`) use the merchant key.
- Notification resources are AES-256-GCM with the 32-character APIv3 key, a 12-character
  nonce and associated data; the ciphertext is base64(ciphertext || tag).

Bodies are bytes throughout: signatures cover the exact bytes on the wire, because every client
serialises JSON its own way.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from channels.rsa import load_private_key as load_private_key
from channels.rsa import load_public_key as load_public_key
from channels.rsa import private_key_pem as private_key_pem
from channels.rsa import public_key_pem as public_key_pem
from channels.rsa import sign, verify

SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
TIMESTAMP_WINDOW = 300
"""Seconds either side of now within which a signed timestamp is accepted."""

HEADER_TIMESTAMP = "Wechatpay-Timestamp"
HEADER_NONCE = "Wechatpay-Nonce"
HEADER_SIGNATURE = "Wechatpay-Signature"
HEADER_SERIAL = "Wechatpay-Serial"
HEADER_SIGNATURE_TYPE = "Wechatpay-Signature-Type"

rsa_sign = sign
"""Base64 SHA256withRSA: the one primitive every WeChat signature uses (shared, `channels.rsa`)."""
rsa_verify = verify

_AUTH_FIELDS = ("mchid", "nonce_str", "signature", "timestamp", "serial_no")
_AUTH_PAIR = re.compile(r'\s*([a-z_]+)="([\x20\x21\x23-\x7e]*)"\s*')
"""A `name="value"` pair; values are printable ASCII, as every signed value is."""
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
"""ASCII digits only: `str.isdigit` also takes `²` (which `int()` refuses) and `٣` (which it
reads as 3); twelve digits keep `int()` far from its length limit."""


class VerificationError(Exception):
    """A signature, timestamp or ciphertext that does not check out."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        """`signature`, `timestamp`, `decrypt` or `malformed`."""
        self.message = message


def request_message(
    method: str, path_with_query: str, timestamp: str, nonce: str, body: bytes
) -> bytes:
    """The bytes a request signature covers."""
    head = f"{method.upper()}\n{path_with_query}\n{timestamp}\n{nonce}\n".encode()
    return head + body + b"\n"


def answer_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    """The bytes an answer or notification signature covers (empty body for 204)."""
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"


@dataclass(frozen=True)
class Authorization:
    """The parts of a request's `Authorization` header."""

    mchid: str
    nonce_str: str
    signature: str
    timestamp: str
    serial_no: str

    def header(self) -> str:
        pairs = ",".join(f'{name}="{getattr(self, name)}"' for name in _AUTH_FIELDS)
        return f"{SIGNATURE_TYPE} {pairs}"


def build_authorization(
    *,
    mchid: str,
    serial_no: str,
    key: rsa.RSAPrivateKey,
    method: str,
    path_with_query: str,
    body: bytes,
    timestamp: int,
    nonce: str,
) -> str:
    """The `Authorization` header value for one request."""
    message = request_message(method, path_with_query, str(timestamp), nonce, body)
    auth = Authorization(mchid, nonce, rsa_sign(key, message), str(timestamp), serial_no)
    return auth.header()


def parse_authorization(value: str) -> Authorization:
    """Split an `Authorization` header. Raises `VerificationError("malformed")`."""
    schema, _, rest = value.strip().partition(" ")
    if schema != SIGNATURE_TYPE:
        raise VerificationError("malformed", f"authorization schema must be {SIGNATURE_TYPE}")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        match = _AUTH_PAIR.fullmatch(part)
        if match is None:
            raise VerificationError("malformed", 'authorization parameters are not name="value"')
        fields[match.group(1)] = match.group(2)
    missing = [name for name in _AUTH_FIELDS if not fields.get(name)]
    if missing:
        raise VerificationError("malformed", f"authorization lacks {', '.join(missing)}")
    return Authorization(*(fields[name] for name in _AUTH_FIELDS))


def verify_authorization(
    auth: Authorization,
    key: rsa.RSAPublicKey,
    *,
    method: str,
    path_with_query: str,
    body: bytes,
    now: float,
) -> None:
    """Check a parsed request signature. Raises `VerificationError`."""
    check_timestamp(auth.timestamp, now)
    message = request_message(method, path_with_query, auth.timestamp, auth.nonce_str, body)
    if not rsa_verify(key, message, auth.signature):
        raise VerificationError("signature", "request signature does not verify")


def check_timestamp(timestamp: str, now: float) -> None:
    """Refuse a signed timestamp more than `TIMESTAMP_WINDOW` seconds away from `now`."""
    if not _TIMESTAMP.fullmatch(timestamp):
        raise VerificationError("malformed", "timestamp is not unix seconds")
    if abs(int(timestamp) - now) > TIMESTAMP_WINDOW:
        raise VerificationError("timestamp", "timestamp is outside the 300 s window")


def sign_answer(
    key: rsa.RSAPrivateKey, key_id: str, body: bytes, *, timestamp: int, nonce: str
) -> dict[str, str]:
    """The five `Wechatpay-*` headers for an answer or a notification."""
    message = answer_message(str(timestamp), nonce, body)
    return {
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: rsa_sign(key, message),
        HEADER_SERIAL: key_id,
        HEADER_SIGNATURE_TYPE: SIGNATURE_TYPE,
    }


def verify_answer(
    headers: Mapping[str, str],
    body: bytes,
    public_keys: Mapping[str, rsa.RSAPublicKey],
    *,
    now: float,
) -> None:
    """Check an answer's or notification's signature. `headers` must be case-insensitive.

    `public_keys` maps platform public key ids to keys. Raises `VerificationError`.
    """
    values = {}
    for name in (HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE, HEADER_SERIAL):
        value = headers.get(name)
        if not value:
            raise VerificationError("signature", f"the {name} header is missing")
        if not (value.isascii() and value.isprintable()):
            raise VerificationError("malformed", f"the {name} header is not printable ASCII")
        values[name] = value
    signature_type = headers.get(HEADER_SIGNATURE_TYPE, SIGNATURE_TYPE)
    if signature_type != SIGNATURE_TYPE:
        raise VerificationError("signature", f"unsupported signature type {signature_type!r}")
    key = public_keys.get(values[HEADER_SERIAL])
    if key is None:
        raise VerificationError("signature", "signed with an unknown platform key")
    check_timestamp(values[HEADER_TIMESTAMP], now)
    message = answer_message(values[HEADER_TIMESTAMP], values[HEADER_NONCE], body)
    if not rsa_verify(key, message, values[HEADER_SIGNATURE]):
        raise VerificationError("signature", "signature does not verify")


def jsapi_pay_params(
    key: rsa.RSAPrivateKey, *, appid: str, prepay_id: str, timestamp: int, nonce: str
) -> dict[str, str]:
    """What `WeixinJSBridge.invoke('getBrandWCPayRequest', ...)` needs."""
    package = f"prepay_id={prepay_id}"
    message = f"{appid}\n{timestamp}\n{nonce}\n{package}\n".encode()
    return {
        "appId": appid,
        "timeStamp": str(timestamp),
        "nonceStr": nonce,
        "package": package,
        "signType": "RSA",
        "paySign": rsa_sign(key, message),
    }


def app_pay_params(
    key: rsa.RSAPrivateKey,
    *,
    appid: str,
    mchid: str,
    prepay_id: str,
    timestamp: int,
    nonce: str,
) -> dict[str, str]:
    """What the WeChat app SDK's `PayReq` needs."""
    message = f"{appid}\n{timestamp}\n{nonce}\n{prepay_id}\n".encode()
    return {
        "appid": appid,
        "partnerid": mchid,
        "prepayid": prepay_id,
        "package": "Sign=WXPay",
        "noncestr": nonce,
        "timestamp": str(timestamp),
        "sign": rsa_sign(key, message),
    }


def _aes_key(apiv3_key: str) -> AESGCM:
    key = apiv3_key.encode()
    if len(key) != 32:
        raise ValueError("the APIv3 key must be 32 bytes")
    return AESGCM(key)


def aes_gcm_encrypt(apiv3_key: str, nonce: str, associated_data: str, plaintext: bytes) -> str:
    """base64(ciphertext || tag), as in a notification's `resource.ciphertext`."""
    sealed = _aes_key(apiv3_key).encrypt(nonce.encode(), plaintext, associated_data.encode())
    return base64.b64encode(sealed).decode()


def aes_gcm_decrypt(apiv3_key: str, nonce: str, associated_data: str, ciphertext: str) -> bytes:
    """Open a notification resource. Raises `VerificationError("decrypt")`."""
    try:
        sealed = base64.b64decode(ciphertext, validate=True)
        return _aes_key(apiv3_key).decrypt(nonce.encode(), sealed, associated_data.encode())
    except (InvalidTag, binascii.Error, ValueError) as exc:
        raise VerificationError("decrypt", "the resource does not decrypt") from exc
