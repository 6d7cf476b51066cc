"""The one place that sends channel requests, and translates transport errors.

Protocol modules build an `HttpRequest` and parse an `HttpAnswer` without doing I/O; adapters
hand the request to `send`, which uses the application's shared `aiohttp.ClientSession`.
Transport failures become the `channels.errors` tree here:

- the connection was never established (refused, unreachable, connect timeout):
  `ChannelUnavailable`, because the channel cannot have seen the request;
- anything after the request may have left (read timeout, dropped connection, bad payload):
  `ChannelOutcomeUnknown`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from channels.errors import ChannelOutcomeUnknown, ChannelUnavailable


@dataclass(frozen=True)
class Timeouts:
    """Per-account time limits, in seconds."""

    connect: float = 2.0
    total: float = 10.0


@dataclass(frozen=True)
class HttpRequest:
    """A fully built, signed channel request."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class HttpAnswer:
    """A channel's answer exactly as received; `headers` are case-insensitive."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    @classmethod
    def build(cls, status: int, headers: Mapping[str, str], body: bytes) -> HttpAnswer:
        """An answer from plain values (tests and recorded fixtures)."""
        return cls(status, CIMultiDictProxy(CIMultiDict(headers)), body)


async def send(
    session: aiohttp.ClientSession, request: HttpRequest, timeouts: Timeouts
) -> HttpAnswer:
    """Send `request` and return the answer, whatever its status."""
    timeout = aiohttp.ClientTimeout(
        total=timeouts.total, connect=timeouts.connect, sock_connect=timeouts.connect
    )
    try:
        async with session.request(
            request.method,
            request.url,
            headers=dict(request.headers),
            data=request.body if request.body else None,
            timeout=timeout,
            allow_redirects=False,
        ) as response:
            body = await response.read()
            return HttpAnswer(response.status, response.headers, body)
    except aiohttp.ConnectionTimeoutError as exc:
        raise ChannelUnavailable(f"connect timeout to {_host(request.url)}") from exc
    except aiohttp.ClientConnectorError as exc:
        raise ChannelUnavailable(f"cannot connect to {_host(request.url)}: {exc.os_error}") from exc
    except TimeoutError as exc:
        raise ChannelOutcomeUnknown(f"timeout waiting for {_host(request.url)}") from exc
    except aiohttp.ClientError as exc:
        raise ChannelOutcomeUnknown(
            f"connection to {_host(request.url)} failed mid-request: {type(exc).__name__}"
        ) from exc


def _host(url: str) -> str:
    # Never echo query strings: they can carry signed parameters.
    return url.split("?", 1)[0]
