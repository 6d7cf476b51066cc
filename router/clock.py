"""The router's clock and time formats.

The clock itself is `channels.clock` (adapters share it and `channels` never imports
`router`); it is re-exported here so router code has one place to import time from.
"""

from __future__ import annotations

from datetime import UTC, datetime

from channels.clock import Clock, FrozenClock, ShiftedClock

__all__ = ["Clock", "FrozenClock", "ShiftedClock", "from_ms", "rfc3339"]


def rfc3339(moment: datetime) -> str:
    """An RFC 3339 UTC string with second precision, as every API time is rendered."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_ms(ms: int) -> datetime:
    """A stored millisecond time as a UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, UTC)
