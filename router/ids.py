"""Prefixed, opaque ids: `pay_`, `re_`, `evt_`, `mch_`, `key_`, `req_`."""

from __future__ import annotations

import hashlib
import re
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
ID_BODY_LEN = 24
"""`pay_` + 24 characters fits every channel's order-number limit (WeChat: 32)."""


PARTITION_CODE_LEN = 2
"""Characters at the start of a partitioned id's body that name its store partition."""


def new_id(prefix: str, length: int = ID_BODY_LEN, *, partition: int | None = None) -> str:
    """`prefix_` + `length` random base62 characters (24 of them carry 142 bits).

    With `partition` the body starts with `partition_code(partition)` instead (the store
    finds the object's partition in its id: `router.store.keys`); the rest stays random (22
    characters carry 131 bits)."""
    head = "" if partition is None else partition_code(partition)
    return prefix + "_" + head + _random(length - len(head))


def derived_id(prefix: str, partition: int, *parts: str) -> str:
    """An id of the same shape as `new_id(prefix, partition=...)`, the same every time for
    the same `parts`: for objects that must not be made twice (a refund named by the
    merchant's own id), so that two attempts to make one meet on one key."""
    digest = hashlib.sha256("\x00".join(parts).encode()).digest()
    body = _base62(digest, ID_BODY_LEN - PARTITION_CODE_LEN)
    return prefix + "_" + partition_code(partition) + body


def partition_code(partition: int) -> str:
    high, low = divmod(partition, 62)
    return _ALPHABET[high % 62] + _ALPHABET[low]


def partition_of_code(object_id: str) -> int:
    """The partition number an id carries (0 for a string too short to carry one)."""
    body = object_id.partition("_")[2]
    high, low = (_ALPHABET.find(c) for c in body[:PARTITION_CODE_LEN].ljust(2, "0"))
    return max(high, 0) * 62 + max(low, 0)


def _random(length: int) -> str:
    return _base62(secrets.token_bytes(length), length)


def _base62(data: bytes, length: int) -> str:
    number = int.from_bytes(data, "big")
    chars = []
    for _ in range(length):
        number, digit = divmod(number, 62)
        chars.append(_ALPHABET[digit])
    return "".join(chars)


def id_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(rf"^{prefix}_[A-Za-z0-9]{{8,64}}$")


PAYMENT_ID = id_pattern("pay")
MERCHANT_ID = id_pattern("mch")
REFUND_ID = id_pattern("re")
