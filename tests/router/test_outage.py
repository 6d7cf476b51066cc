"""A background loop's store outage is a few lines: first failure, reminders, recovery."""

from __future__ import annotations

import logging

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from router.clock import FrozenClock
from router.outage import REMIND_S, StoreOutage

log = logging.getLogger("tests.outage")


def test_one_line_then_a_reminder_then_recovery(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=log.name)
    clock = FrozenClock()
    outage = StoreOutage(log, "some loop", clock)
    outage.recovered()  # nothing was down: nothing to say
    down = RedisConnectionError("Connection refused")
    for _ in range(100):
        outage.failed(down)
        clock.advance(0.05)
    assert [r.getMessage() for r in caplog.records] == [
        "some loop: store unavailable (ConnectionError: Connection refused); retrying"
    ]
    clock.advance(REMIND_S)
    outage.failed(down)
    outage.failed(down)
    assert len(caplog.records) == 2
    assert "still unavailable after 35 s (101 failures" in caplog.records[1].getMessage()
    assert outage.down and outage.failures == 102
    outage.recovered()
    outage.recovered()
    assert len(caplog.records) == 3
    assert caplog.records[2].getMessage() == (
        "some loop: store available again after 35 s (102 failures)"
    )
    assert not outage.down and outage.failures == 0
    assert not [r for r in caplog.records if r.exc_info]
