"""The one clock: every deadline, expiry, timestamp and signature window reads it.

It lives in `channels` because both packages use it and `channels` never imports `router`;
`router.clock` re-exports it beside the router's time formats. Code under `router` and
`channels` reads the time only through a `Clock` it was given (`tests/test_clock_reads.py`
checks), so tests move time with `FrozenClock` or `ShiftedClock` instead of sleeping.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


class Clock:
    """The system's clocks: wall time for what is stored or sent, monotonic for deadlines."""

    def now(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    def now_ms(self) -> int:
        """Milliseconds since the epoch, as the store keeps times."""
        return int(self.now() * 1000)

    def utcnow(self) -> datetime:
        """Now as a timezone-aware UTC time."""
        return datetime.fromtimestamp(self.now(), UTC)

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for deadlines and intervals in a process."""
        return time.monotonic()


class FrozenClock(Clock):
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._monotonic = 0.0

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        """Move wall and monotonic time forward together."""
        self._now += seconds
        self._monotonic += seconds


class ShiftedClock(Clock):
    """Real time plus an offset a test moves forward: for runs against servers (simulators)
    that keep real time, where a frozen clock would stop everything that waits."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def now(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        """Move wall and monotonic time forward together."""
        self.offset += seconds
