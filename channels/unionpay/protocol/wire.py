"""UnionPay's wire formats: forms, raw answers, times, order ids, the signed envelope. No I/O.

- Requests and notifications are ordinary `application/x-www-form-urlencoded` posts (UTF-8).
- Synchronous answers are *not* URL-encoded: the body is `k=v&k=v...` with raw values, as
  UnionPay's SDKs expect. Values may hold `=` (base64, PEM) and, inside `{...}` or `[...]`,
  also `&`; `decode_answer` splits only on top-level `&` and at a key's first `=`.
- `txnTime` is `YYYYMMDDhhmmss` in Beijing time; amounts are integer fen; `currencyCode` 156.
- `orderId` is 8-40 letters and digits. The router's ids (`pay_AbC...`, `re_XyZ...`) become
  valid ones by dropping the underscore (`payAbC...`); `from_order_id` puts it back. Other
  ids of letters and digits pass as they are (see `to_order_id` for the one escape).
- Every request carries the common fields (`base_fields`), `certId` and `signature` (`signed`,
  `channels.unionpay.crypto`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, urlencode

from cryptography.hazmat.primitives.asymmetric import rsa

from channels.http import HttpRequest
from channels.unionpay.crypto import sign

VERSION = "5.1.0"
ENCODING = "UTF-8"
SIGN_METHOD = "01"
ACCESS_TYPE = "0"
USER_AGENT = "payrouter-unionpay/0.1"


@dataclass(frozen=True)
class Merchant:
    """Who signs requests: the merchant id, its certificate's `certId` and its key."""

    mer_id: str
    cert_id: str
    private_key: rsa.RSAPrivateKey


def base_fields(merchant: Merchant, txn_type: str, sub_type: str, biz_type: str) -> dict[str, str]:
    return {
        "version": VERSION,
        "encoding": ENCODING,
        "signMethod": SIGN_METHOD,
        "txnType": txn_type,
        "txnSubType": sub_type,
        "bizType": biz_type,
        "accessType": ACCESS_TYPE,
        "merId": merchant.mer_id,
    }


def signed(merchant: Merchant, fields: Mapping[str, str]) -> dict[str, str]:
    """`fields` with `certId` and `signature` added."""
    out = {**fields, "certId": merchant.cert_id}
    out["signature"] = sign(out, merchant.private_key)
    return out


def post(base_url: str, path: str, fields: Mapping[str, str]) -> HttpRequest:
    """A signed form posted to the gateway."""
    headers = {
        "Content-Type": f"application/x-www-form-urlencoded; charset={ENCODING}",
        "Accept": "*/*",
        "User-Agent": USER_AGENT,
    }
    return HttpRequest("POST", base_url.rstrip("/") + path, headers, encode_form(fields))


BEIJING = timezone(timedelta(hours=8), "CST")
TXN_TIME_FORMAT = "%Y%m%d%H%M%S"
CURRENCIES: Mapping[str, str] = {"CNY": "156"}
"""ISO 4217 letters → UnionPay's numeric `currencyCode`."""

ORDER_ID = re.compile(r"[0-9A-Za-z]{8,40}")
_TXN_TIME = re.compile(r"[0-9]{14}")
_AMOUNT = re.compile(r"[1-9][0-9]{0,11}")
"""ASCII digits only: `str.isdigit` also takes `²` (which `int()` refuses) and `٣` (which
`int()` and `strptime` read as 3)."""
ID_PREFIXES = ("pay", "re")
"""Router id prefixes (`pay_`, `re_`) whose underscore is dropped."""
VOID_PREFIX = "vd"
"""The orderIds of voids that close an order."""
ESCAPE = "X"
"""Marks an id that was already letters and digits but starts like a mapped one."""
_ESCAPED = (*ID_PREFIXES, VOID_PREFIX, ESCAPE)
_ROUTER_ID = re.compile(r"(pay|re)_([0-9A-Za-z]+)")


class WireError(ValueError):
    """A message that cannot be read, or a value that cannot be written."""


def to_order_id(order_no: str) -> str:
    """Our order or refund number as an `orderId`. Raises `WireError` when it has none.

    `pay_AbC123` → `payAbC123` and `re_XyZ` → `reXyZ`; another id of letters and digits
    stays as it is, unless it starts like those (`pay`, `re`), like a void (`vd`) or with
    `X`: then it gets an `X` in front (`pay123abc` → `Xpay123abc`), so that every orderId
    maps back to exactly one number.
    """
    match = _ROUTER_ID.fullmatch(order_no)
    if match is not None:
        order_id = match.group(1) + match.group(2)
    elif order_no.isascii() and order_no.isalnum():
        order_id = ESCAPE + order_no if order_no.startswith(_ESCAPED) else order_no
    else:
        raise WireError(f"{order_no!r} has characters other than letters, digits and one _")
    if not ORDER_ID.fullmatch(order_id):
        raise WireError(f"{order_no!r} does not fit UnionPay's 8-40 character orderId")
    return order_id


def from_order_id(order_id: str) -> str:
    """The order or refund number `to_order_id` made `order_id` from. Raises `WireError`."""
    if not ORDER_ID.fullmatch(order_id):
        raise WireError(f"orderId {order_id!r} is not 8-40 letters and digits")
    if order_id.startswith(ESCAPE):
        original = order_id[len(ESCAPE) :]
        if not original.startswith(_ESCAPED):
            raise WireError(f"orderId {order_id!r} was not made by to_order_id")
        return original
    for prefix in ID_PREFIXES:
        if order_id.startswith(prefix) and len(order_id) > len(prefix):
            return f"{prefix}_{order_id[len(prefix) :]}"
    if order_id.startswith(VOID_PREFIX):
        raise WireError(f"orderId {order_id!r} is a void's, not a payment's or refund's")
    return order_id


def void_order_id(order_no: str) -> str:
    """The orderId of the void that closes `order_no`'s order (`pay_AbC` → `vdpayAbC`)."""
    return VOID_PREFIX + to_order_id(order_no)[-38:]


def format_txn_time(moment: datetime) -> str:
    """`YYYYMMDDhhmmss` in Beijing time. Raises `WireError` for a naive time."""
    if moment.tzinfo is None:
        raise WireError("txnTime needs a timezone-aware time")
    return moment.astimezone(BEIJING).strftime(TXN_TIME_FORMAT)


def parse_txn_time(text: str) -> datetime:
    """A `YYYYMMDDhhmmss` Beijing time. Raises `WireError`."""
    if not _TXN_TIME.fullmatch(text):
        raise WireError(f"{text!r} is not YYYYMMDDhhmmss")
    try:
        return datetime.strptime(text, TXN_TIME_FORMAT).replace(tzinfo=BEIJING)
    except ValueError:
        raise WireError(f"{text!r} is not a valid time") from None


def currency_code(currency: str) -> str:
    try:
        return CURRENCIES[currency]
    except KeyError:
        raise WireError(f"UnionPay online payments take CNY, not {currency!r}") from None


def currency_of(code: str) -> str | None:
    for letters, number in CURRENCIES.items():
        if number == code:
            return letters
    return None


def parse_amount(text: str) -> int:
    """`txnAmt`: a positive integer of fen without sign or leading zeros. Raises `WireError`."""
    if not _AMOUNT.fullmatch(text):
        raise WireError(f"txnAmt {text!r} is not a positive integer of fen")
    return int(text)


def encode_form(fields: Mapping[str, str]) -> bytes:
    """A URL-encoded form body (requests, notifications)."""
    return urlencode(list(fields.items())).encode()


def decode_form(body: bytes) -> dict[str, str]:
    """A URL-encoded form body; a repeated field is refused. Raises `WireError`."""
    try:
        text = body.decode()
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
    except (UnicodeDecodeError, ValueError):
        raise WireError("the body is not a UTF-8 form") from None
    fields: dict[str, str] = {}
    for key, value in pairs:
        if key in fields:
            raise WireError(f"the field {key} appears twice")
        fields[key] = value
    return fields


def encode_answer(fields: Mapping[str, str]) -> bytes:
    """A synchronous answer body: raw `k=v` pairs joined with `&`, not URL-encoded."""
    return "&".join(f"{key}={value}" for key, value in fields.items()).encode()


def decode_answer(body: bytes) -> dict[str, str]:
    """A synchronous answer body. Raises `WireError`."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise WireError("the answer is not UTF-8") from None
    fields: dict[str, str] = {}
    for pair in _top_level_pairs(text):
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise WireError("the answer is not k=v pairs")
        if key in fields:
            raise WireError(f"the field {key} appears twice")
        fields[key] = value
    return fields


def _top_level_pairs(text: str) -> list[str]:
    """Split on `&` outside `{...}` and `[...]`; nesting is tracked per value."""
    pairs: list[str] = []
    depth = 0
    start = 0
    in_value = False
    for index, char in enumerate(text):
        if char == "=" and not in_value:
            in_value = True
        elif in_value and char in "{[":
            depth += 1
        elif in_value and char in "}]" and depth:
            depth -= 1
        elif char == "&" and depth == 0:
            pairs.append(text[start:index])
            start = index + 1
            in_value = False
    if text:
        pairs.append(text[start:])
    return pairs
