"""WeChat Pay API v3 on the wire: times, JSON, the signed request. Pure functions, no I/O.

Times are RFC 3339 in China time (`2018-06-08T10:34:56+08:00`) on the wire and timezone-aware
`datetime`s inside; amounts are integer fen in JSON. Every request carries an `Authorization`
header signed over method, path, timestamp, nonce and body (`channels.wechat.crypto`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from yarl import URL

from channels.http import HttpRequest
from channels.wechat.crypto import build_authorization

CHINA_TIME = timezone(timedelta(hours=8), "CST")
USER_AGENT = "payrouter-wechat/0.1"

ACK_ACCEPTED = {"code": "SUCCESS", "message": "成功"}
ACK_REFUSED = {"code": "FAIL", "message": "失败"}


@dataclass(frozen=True)
class Merchant:
    """The merchant side of an account: who signs requests."""

    mchid: str
    appid: str
    serial_no: str
    private_key: rsa.RSAPrivateKey


def format_time(moment: datetime) -> str:
    """RFC 3339 in China time, seconds precision: `2018-06-08T10:34:56+08:00`."""
    if moment.tzinfo is None:
        raise ValueError("a WeChat time must be timezone-aware")
    return moment.astimezone(CHINA_TIME).replace(microsecond=0).isoformat()


def parse_time(text: str) -> datetime:
    """An RFC 3339 time with an offset. Raises `ValueError` for a naive or bad time."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"time {text!r} has no UTC offset")
    return moment


def dump_json(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def signed_request(
    merchant: Merchant,
    base_url: str,
    method: str,
    path_with_query: str,
    payload: Mapping[str, Any] | None,
    *,
    timestamp: int,
    nonce: str,
) -> HttpRequest:
    """A request signed over the path exactly as it will be sent (percent-encoded)."""
    url = URL(base_url.rstrip("/") + path_with_query)
    body = dump_json(payload) if payload is not None else b""
    authorization = build_authorization(
        mchid=merchant.mchid,
        serial_no=merchant.serial_no,
        key=merchant.private_key,
        method=method,
        path_with_query=url.raw_path_qs,
        body=body,
        timestamp=timestamp,
        nonce=nonce,
    )
    headers = {"Authorization": authorization, "Accept": "application/json"}
    headers["User-Agent"] = USER_AGENT
    if body:
        headers["Content-Type"] = "application/json"
    return HttpRequest(method, str(url), headers, body)


def decode_object(body: bytes) -> dict[str, Any]:
    """A JSON object, or `ValueError`."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ValueError("not JSON") from exc
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data
