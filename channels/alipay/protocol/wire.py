"""Alipay OpenAPI on the wire: times, amounts, the signed parameters. Pure functions, no I/O.

Every call is one set of parameters for `/gateway.do`: the common ones (`app_id`, `method`,
`charset=utf-8`, `sign_type=RSA2`, `timestamp` in Beijing time, `version=1.0`, `notify_url`,
`return_url`, `biz_content` JSON) and `sign`. Server calls are POSTed as a form; page and wap
payments become a URL the buyer's browser opens, and app payments an order string the Alipay
app takes. Amounts are integer fen inside and yuan strings with two decimals on the wire,
converted exactly (no floats: `"19.99"` <-> `1999`); requests may carry fewer decimals (`"20"`,
`"20.5"`), which `yuan_to_fen` also reads. A verified answer is a `Reply`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives.asymmetric import rsa

from channels.alipay.crypto import SIGN_TYPE, dump_json, sign_request
from channels.http import HttpRequest

BEIJING = timezone(timedelta(hours=8), "CST")
GATEWAY_PATH = "/gateway.do"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,3})?")
USER_AGENT = "payrouter-alipay/0.1"


@dataclass(frozen=True)
class App:
    """Our side of an account: who signs requests and whose signatures we accept."""

    app_id: str
    private_key: rsa.RSAPrivateKey
    alipay_key: rsa.RSAPublicKey


def format_time(moment: datetime) -> str:
    """`YYYY-MM-DD HH:MM:SS` in Beijing time, from a timezone-aware time."""
    if moment.tzinfo is None:
        raise ValueError("an Alipay time must be timezone-aware")
    return moment.astimezone(BEIJING).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    """A `YYYY-MM-DD HH:MM:SS` Beijing time, with optional milliseconds (`gmt_refund`).

    Raises `ValueError`.
    """
    if _TIME.fullmatch(text) is None:
        raise ValueError(f"time {text[:40]!r} is not YYYY-MM-DD HH:MM:SS")
    try:
        moment = datetime.strptime(text[:19], TIME_FORMAT).replace(tzinfo=BEIJING)
    except ValueError:
        raise ValueError(f"time {text!r} is not a valid date and time") from None
    fraction = text[20:]
    return moment.replace(microsecond=int(fraction.ljust(6, "0"))) if fraction else moment


def gateway_url(base_url: str) -> str:
    return base_url.rstrip("/") + GATEWAY_PATH


def signed_params(
    app: App,
    api_method: str,
    biz: Mapping[str, Any],
    *,
    now: datetime,
    notify_url: str | None = None,
    return_url: str | None = None,
) -> dict[str, str]:
    """The common parameters plus `biz_content`, signed."""
    params = {
        "app_id": app.app_id,
        "method": api_method,
        "format": "JSON",
        "charset": "utf-8",
        "sign_type": SIGN_TYPE,
        "timestamp": format_time(now),
        "version": "1.0",
        "notify_url": notify_url or "",
        "return_url": return_url or "",
        "biz_content": dump_json(biz),
    }
    return sign_request(app.private_key, params)


def server_request(gateway: str, params: Mapping[str, str]) -> HttpRequest:
    """A server call: the signed parameters POSTed as a UTF-8 form."""
    headers = {
        "Content-Type": "application/x-www-form-urlencoded;charset=utf-8",
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
    }
    return HttpRequest("POST", gateway, headers, urlencode(params).encode())


def browser_url(gateway: str, params: Mapping[str, str]) -> str:
    """The URL a buyer's browser opens for page and wap payments."""
    return f"{gateway}?{urlencode(params)}"


def order_string(params: Mapping[str, str]) -> str:
    """What the Alipay app SDK's `payV2` takes: the signed parameters, URL-encoded."""
    return urlencode(params)


CODE_SUCCESS = "10000"


@dataclass(frozen=True)
class Reply:
    """A verified answer: Alipay's codes and the rest of the `_response` object."""

    api_method: str
    code: str
    msg: str
    sub_code: str
    sub_msg: str
    data: Mapping[str, Any]

    @property
    def ok(self) -> bool:
        return self.code == CODE_SUCCESS

    def describe(self) -> str:
        text = f"Alipay {self.api_method} answered {self.code} {self.msg}".rstrip()
        if self.sub_code:
            text += f" {self.sub_code}"
        if self.sub_msg:
            text += f": {self.sub_msg[:200]}"
        return text

    def text(self, name: str) -> str | None:
        value = self.data.get(name)
        return value if isinstance(value, str) and value else None


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
