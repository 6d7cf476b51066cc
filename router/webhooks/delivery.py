"""The HTTP side of webhook delivery: signing, the safe resolver, reading receivers' answers.

Everything here takes outside input (a merchant's URL, a receiver's headers) and must not
raise on any of it: a header is text, and Unicode digits such as `²` are not digits here.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import re
import socket
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from router.clock import Clock
from router.urls import public_address

SECONDS = re.compile(r"[0-9]{1,9}")
"""`Retry-After` as delta-seconds (ASCII digits only; nine are more than enough)."""
SHOWN_URL_MAX = 300


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<signature>` for a `whsec_` secret, per the Standard Webhooks spec."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def signed_request(
    payload: dict[str, Any], msg_id: str, timestamp: int, secrets: list[str]
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one delivery, signed with every secret in force."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "payrouter-webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, msg_id, timestamp, body) for s in secrets),
    }
    return body, headers


class UnsafeTarget(aiohttp.ClientError):
    """A live-mode webhook URL that resolves to an address merchants must not reach."""


class SafeResolver(AbstractResolver):
    """Resolves like aiohttp does, then refuses any answer that is not a public address.

    aiohttp does not call a resolver for IP-literal hosts: the dispatcher checks those itself
    (`router.urls.live_url_problem`) before connecting.
    """

    def __init__(self) -> None:
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        for entry in found:
            if not public_address(entry["host"]):
                raise UnsafeTarget(f"{host} resolves to a non-public address")
        return found

    async def close(self) -> None:
        await self._inner.close()


def retry_after(value: str | None, clock: Clock) -> float:
    """Seconds a receiver asked us to wait (`Retry-After`: seconds or an HTTP date, counted
    from `clock`'s now); 0 for anything else, never an exception."""
    if not value:
        return 0.0
    value = value.strip()
    if SECONDS.fullmatch(value):
        return float(value)
    with contextlib.suppress(TypeError, ValueError, IndexError, OverflowError):
        return max(0.0, parsedate_to_datetime(value).timestamp() - clock.now())
    return 0.0


def shown_url(url: str) -> str:
    """A URL as attempts and logs show it: without query, fragment or credentials. Works on
    URLs that cannot be parsed (stored before they were validated)."""
    head = re.split(r"[?#]", url, maxsplit=1)[0]
    scheme, sep, rest = head.partition("://")
    if sep:
        authority, slash, path = rest.partition("/")
        head = f"{scheme}://{authority.rpartition('@')[2]}{slash}{path}"
    return head[:SHOWN_URL_MAX]
