"""Alipay amounts: yuan strings with two decimals, converted exactly from and to integer fen.

No floats anywhere: `"19.99"` ↔ `1999`. Alipay writes two decimals in its answers and
notifications; requests may carry fewer (`"20"`, `"20.5"`), which `yuan_to_fen` also reads.
"""

from __future__ import annotations

import re

_YUAN = re.compile(r"(0|[1-9][0-9]{0,14})(?:\.([0-9]{1,2}))?")


def fen_to_yuan(fen: int) -> str:
    """Integer fen as yuan with two decimals: 1999 → "19.99". Refuses negatives and bools."""
    if not isinstance(fen, int) or isinstance(fen, bool):
        raise TypeError("an amount in fen must be an int")
    if fen < 0:
        raise ValueError("an amount must not be negative")
    return f"{fen // 100}.{fen % 100:02d}"


def yuan_to_fen(text: str) -> int:
    """A yuan string ("19.99", "20", "0.5") as integer fen. Raises `ValueError` if malformed.

    Accepted: digits without a sign, exponent, spaces or superfluous leading zeros, and at
    most two decimals.
    """
    if not isinstance(text, str):
        raise ValueError("an amount must be a string")
    match = _YUAN.fullmatch(text)
    if match is None:
        raise ValueError(f"malformed amount {text[:32]!r}")
    whole, decimals = match.group(1), match.group(2) or ""
    return int(whole) * 100 + int(decimals.ljust(2, "0"))
