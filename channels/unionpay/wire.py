"""UnionPay's wire formats: forms, raw answers, times and order ids. Pure functions, no I/O.

- Requests and notifications are ordinary `application/x-www-form-urlencoded` posts (UTF-8).
- Synchronous answers are *not* URL-encoded: the body is `k=v&k=v...` with raw values, as
  UnionPay's SDKs expect. Values may hold `=` (base64, PEM) and, inside `{...}` or `[...]`,
  also `&`; `decode_answer` splits only on top-level `&` and at a key's first `=`.
- `txnTime` is `YYYYMMDDhhmmss` in Beijing time; amounts are integer fen; `currencyCode` 156.
- `orderId` is 8-40 letters and digits. The router's ids (`pay_AbC...`, `re_XyZ...`) become
  valid ones by dropping the underscore (`payAbC...`); `from_order_id` puts it back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, urlencode

BEIJING = timezone(timedelta(hours=8), "CST")
TXN_TIME_FORMAT = "%Y%m%d%H%M%S"
CURRENCIES: Mapping[str, str] = {"CNY": "156"}
"""ISO 4217 letters → UnionPay's numeric `currencyCode`."""

ORDER_ID = re.compile(r"[0-9A-Za-z]{8,40}")
ID_PREFIXES = ("pay", "re")
"""Router id prefixes that map to orderIds; a closing void uses `VOID_PREFIX`."""
VOID_PREFIX = "vd"
_ROUTER_ID = re.compile(r"(pay|re)_([0-9A-Za-z]+)")


class WireError(ValueError):
    """A message that cannot be read, or a value that cannot be written."""


def to_order_id(router_id: str) -> str:
    """`pay_AbC123` → `payAbC123`. Raises `WireError` for an id that has no valid orderId."""
    match = _ROUTER_ID.fullmatch(router_id)
    if match is None:
        raise WireError(f"{router_id!r} is not a payment or refund id")
    order_id = match.group(1) + match.group(2)
    if not ORDER_ID.fullmatch(order_id):
        raise WireError(f"{router_id!r} does not fit UnionPay's 8-40 character orderId")
    return order_id


def from_order_id(order_id: str) -> str:
    """`payAbC123` → `pay_AbC123`, `reXyZ` → `re_XyZ`. Raises `WireError` for others."""
    if ORDER_ID.fullmatch(order_id):
        for prefix in ID_PREFIXES:
            if order_id.startswith(prefix) and len(order_id) > len(prefix):
                return f"{prefix}_{order_id[len(prefix) :]}"
    raise WireError(f"orderId {order_id!r} was not made from a payment or refund id")


def void_order_id(router_id: str) -> str:
    """The orderId of the void that closes `router_id`'s order (`pay_AbC` → `vdpayAbC`)."""
    return VOID_PREFIX + to_order_id(router_id)[-38:]


def format_txn_time(moment: datetime) -> str:
    """`YYYYMMDDhhmmss` in Beijing time. Raises `WireError` for a naive time."""
    if moment.tzinfo is None:
        raise WireError("txnTime needs a timezone-aware time")
    return moment.astimezone(BEIJING).strftime(TXN_TIME_FORMAT)


def parse_txn_time(text: str) -> datetime:
    """A `YYYYMMDDhhmmss` Beijing time. Raises `WireError`."""
    if len(text) != 14 or not text.isdigit():
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
    if not text.isdigit() or text.startswith("0") or len(text) > 12:
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
