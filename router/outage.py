"""How a background loop reports that the store is down: a few lines, never a traceback a poll.

The re-query worker, the webhook dispatcher (its deliveries and its consumer clean-up) poll the
store many times a second; while Redis is down every poll fails the same way, and a traceback
each time would bury the one line that matters. `StoreOutage` logs the first failure, then a
reminder at most every `REMIND_S` seconds, and one line when the store answers again. Anything
else a loop catches is a bug, and is logged with its traceback there.
"""

from __future__ import annotations

import logging

from router.clock import Clock

REMIND_S = 30.0


class StoreOutage:
    """One loop's view of a store outage: when it began and what it last logged."""

    def __init__(self, log: logging.Logger, loop: str, clock: Clock) -> None:
        self._log = log
        self._loop = loop
        self._clock = clock
        self._since: float | None = None
        self._logged_at = 0.0
        self._failures = 0

    @property
    def down(self) -> bool:
        """Whether the last store operation of the loop failed."""
        return self._since is not None

    @property
    def failures(self) -> int:
        """Failures since the outage began (0 while the store answers)."""
        return self._failures

    def failed(self, exc: BaseException) -> None:
        """A store operation failed because the store is unavailable."""
        now = self._clock.now()
        self._failures += 1
        if self._since is None:
            self._since = self._logged_at = now
            self._log.warning(
                "%s: store unavailable (%s: %s); retrying",
                self._loop,
                type(exc).__name__,
                exc,
            )
        elif now - self._logged_at >= REMIND_S:
            self._logged_at = now
            self._log.warning(
                "%s: store still unavailable after %.0f s (%d failures; last %s: %s)",
                self._loop,
                now - self._since,
                self._failures,
                type(exc).__name__,
                exc,
            )

    def recovered(self) -> None:
        """A store operation succeeded: say so once if the store was down."""
        if self._since is None:
            return
        self._log.info(
            "%s: store available again after %.0f s (%d failures)",
            self._loop,
            self._clock.now() - self._since,
            self._failures,
        )
        self._since = None
        self._failures = 0
