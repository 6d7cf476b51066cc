"""Injectable time, so expiry, re-query schedules and breakers are tested without sleeping."""

from __future__ import annotations

import time
from datetime import UTC, datetime


class Clock:
    """Wall-clock time. Tests substitute `FrozenClock`."""

    def now(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    def now_ms(self) -> int:
        return int(self.now() * 1000)

    def utcnow(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)


class FrozenClock(Clock):
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds


def rfc3339(moment: datetime) -> str:
    """An RFC 3339 UTC string with second precision, as every API time is rendered."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
