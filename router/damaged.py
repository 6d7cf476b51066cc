"""Records in the store that cannot be decoded: skipped, counted and logged once, never a 500.

A record damaged by hand, by a bug or by a partial restore must not take down every read that
meets it (a list of events, the dead letters). Readers leave it out, or show what can be read,
and tell `DamagedRecords`, which counts it in `payrouter_store_unreadable_records_total{record}`
and logs one line the first time this process meets it: someone must repair or remove it.
"""

from __future__ import annotations

import logging

from router.metrics import Metrics

log = logging.getLogger("payrouter.store")
REMEMBERED = 10_000
"""Damaged records a process remembers having reported; beyond, they are reported again."""


class DamagedRecords:
    """What this process has reported, so each damaged record is one line, not one a read."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._seen: set[tuple[str, str]] = set()

    def report(self, record: str, name: str, reason: str) -> None:
        """`record` (a kind: `event`, `event_attempt`) named `name` cannot be read."""
        if (record, name) in self._seen:
            return
        if len(self._seen) >= REMEMBERED:
            self._seen.clear()
        self._seen.add((record, name))
        self._metrics.unreadable_records.labels(record).inc()
        log.warning("unreadable %s in the store, left out: %s: %s", record, name, reason)
