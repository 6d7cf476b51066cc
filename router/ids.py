"""Prefixed, opaque ids: `pay_`, `re_`, `evt_`, `mch_`, `key_`, `req_`."""

from __future__ import annotations

import re
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
ID_BODY_LEN = 24
"""`pay_` + 24 characters fits every channel's order-number limit (WeChat: 32)."""


def new_id(prefix: str, length: int = ID_BODY_LEN) -> str:
    """`prefix_` + `length` random base62 characters (24 of them carry 142 bits)."""
    number = int.from_bytes(secrets.token_bytes(length), "big")
    chars = []
    for _ in range(length):
        number, digit = divmod(number, 62)
        chars.append(_ALPHABET[digit])
    return prefix + "_" + "".join(chars)


def id_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(rf"^{prefix}_[A-Za-z0-9]{{8,64}}$")


PAYMENT_ID = id_pattern("pay")
MERCHANT_ID = id_pattern("mch")
REFUND_ID = id_pattern("re")
