"""A small in-process read-through cache for what every request reads and rarely changes."""

from __future__ import annotations

from typing import Generic, TypeVar

from channels.clock import Clock

K = TypeVar("K")
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    """Values kept for `ttl_s` seconds of the clock's monotonic time; `ttl_s = 0` keeps
    nothing."""

    def __init__(self, ttl_s: float, clock: Clock, max_items: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._max = max_items
        self._items: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        found = self._items.get(key)
        if found is None:
            return None
        if self._clock.monotonic() >= found[0]:
            del self._items[key]
            return None
        return found[1]

    def put(self, key: K, value: V) -> V:
        if self.ttl_s > 0:
            if len(self._items) >= self._max:
                self._items.clear()
            self._items[key] = (self._clock.monotonic() + self.ttl_s, value)
        return value

    def drop(self, key: K) -> None:
        self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()
