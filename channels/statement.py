"""What every channel's statement reader shares: amounts, errors, totals and the download.

Statements write yuan as text ("19.99", "-0.60", WeChat's fees "0.06000"); they are read
with string arithmetic into integer fen, never through a float. A file is downloaded into a
spooled temporary file (memory up to `SPOOL_BYTES`, disk beyond) and read from there as a
stream, so a statement of a million lines never sits in memory whole.
"""

from __future__ import annotations

import functools
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import IO

import aiohttp

from channels.base import StatementLine
from channels.errors import ChannelError, ChannelOutcomeUnknown, ChannelUnavailable
from channels.http import HttpRequest, Timeouts

CHINA_TIME = timezone(timedelta(hours=8), "CST")
"""Every channel here closes its statement day at midnight China time."""
SPOOL_BYTES = 4 * 1024 * 1024
CHUNK_BYTES = 256 * 1024
_YUAN = re.compile(r"(-?)([0-9]{1,15})\.([0-9]{2,5})")


class StatementInvalid(ChannelError):
    """A statement that cannot be trusted: its hash, its format or its summary is wrong.

    `code` says which (`STATEMENT_HASH`, `STATEMENT_FORMAT`, `STATEMENT_SUMMARY`); the
    message names the line or the column.
    """

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message, code=code, fault="channel")


def format_error(message: str) -> StatementInvalid:
    return StatementInvalid(message, code="STATEMENT_FORMAT")


def columns(header: list[str], needed: Iterable[str], where: str) -> dict[str, int]:
    """Column name → index from a header row, checked to have the `needed` columns.

    Channels add columns to their files over the years; a reader finds its columns by name
    and tolerates the others. Raises `StatementInvalid` naming what is missing.
    """
    index = {name.strip(): position for position, name in enumerate(header)}
    missing = [name for name in needed if name not in index]
    if missing:
        raise format_error(f"{where}: the header has no {', '.join(missing)}")
    return index


def yuan_to_fen(text: str, column: str, *, places: int = 2) -> int:
    """A signed yuan amount of a statement as integer fen.

    `places` is how many decimals the column writes (WeChat writes fees with five); digits
    past the fen must be zeros, since money here is whole fen. Raises `StatementInvalid`
    naming `column`.
    """
    match = _YUAN.fullmatch(text)
    if match is None or len(match.group(3)) != places:
        raise format_error(f"{column}: {text[:32]!r} is not yuan with {places} decimals")
    sign, whole, decimals = match.groups()
    if decimals[2:].strip("0"):
        raise format_error(f"{column}: {text!r} is not a whole number of fen")
    fen = int(whole) * 100 + int(decimals[:2])
    return -fen if sign else fen


_TIMES = {
    "%Y-%m-%d %H:%M:%S": re.compile(
        r"([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})"
    ),
    "%Y%m%d%H%M%S": re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})"),
}


@functools.lru_cache(maxsize=64)
def _midnight_ms(year: int, month: int, day: int) -> int:
    moment = datetime(year, month, day, tzinfo=CHINA_TIME)
    return int(moment.astimezone(UTC).timestamp()) * 1000


def china_time_ms(text: str, fmt: str, column: str) -> int:
    """A China-time timestamp of a statement (`fmt` one of `_TIMES`) as UTC epoch ms.

    Read by hand rather than `strptime`: a statement has a million of them, all of a day.
    """
    match = _TIMES[fmt].fullmatch(text)
    try:
        if match is None:
            raise ValueError(text)
        year, month, day, hour, minute, second = map(int, match.groups())
        if hour > 23 or minute > 59 or second > 59:
            raise ValueError(text)
        midnight = _midnight_ms(year, month, day)
    except ValueError:
        raise format_error(f"{column}: {text[:32]!r} is not a time ({fmt})") from None
    return midnight + ((hour * 60 + minute) * 60 + second) * 1000


@dataclass
class Totals:
    """Running sums of what a statement's lines say, to hold against its summary."""

    payments: int = 0
    refunds: int = 0
    amount: int = 0
    """Order amounts of payments."""
    settled: int = 0
    """Settled amounts of payments."""
    refunded: int = 0
    """Settled amounts of refunds."""
    refund_asked: int = 0
    fees: int = 0

    def add(self, line: StatementLine) -> None:
        if line.kind == "payment":
            self.payments += 1
            self.amount += line.amount
            self.settled += line.settled
        else:
            self.refunds += 1
            self.refunded += line.settled
            self.refund_asked += line.amount
        self.fees += line.fee


def check_summary(expected: dict[str, int], found: dict[str, int], where: str) -> None:
    """Every summary figure equals the sum of the lines. Raises `StatementInvalid` naming
    the first figure that does not."""
    for name, value in expected.items():
        if found.get(name) != value:
            raise StatementInvalid(
                f"{where}: summary {name} is {value}, the lines add up to {found.get(name)}",
                code="STATEMENT_SUMMARY",
            )


async def download(
    session: aiohttp.ClientSession,
    request: HttpRequest,
    timeouts: Timeouts,
    on_status: Callable[[int, bytes], None],
) -> IO[bytes]:
    """The body of `request`, streamed into a spooled temporary file (rewound).

    A non-2xx answer is read (it is small) and handed to `on_status`, which raises the
    channel's error. The connect timeout is the account's; reading has no total limit, only
    a limit between chunks, since a big statement takes longer than any API call.
    """
    timeout = aiohttp.ClientTimeout(
        total=None,
        connect=timeouts.connect,
        sock_connect=timeouts.connect,
        sock_read=timeouts.total,
    )
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - handed to caller
    try:
        async with session.request(
            request.method,
            request.url,
            headers=dict(request.headers),
            data=request.body or None,
            timeout=timeout,
            allow_redirects=False,
        ) as response:
            if not 200 <= response.status < 300:
                on_status(response.status, await response.read())
            async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                out.write(chunk)
    except aiohttp.ConnectionTimeoutError as exc:
        out.close()
        raise ChannelUnavailable("connect timeout downloading a statement") from exc
    except aiohttp.ClientConnectorError as exc:
        out.close()
        raise ChannelUnavailable(f"cannot connect to download a statement: {exc}") from exc
    except (TimeoutError, aiohttp.ClientError) as exc:
        out.close()
        raise ChannelOutcomeUnknown(f"statement download broke off: {type(exc).__name__}") from exc
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out


def chunks(stream: IO[bytes]) -> Iterator[bytes]:
    """`stream` read in fixed chunks to its end."""
    while chunk := stream.read(CHUNK_BYTES):
        yield chunk
