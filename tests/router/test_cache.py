"""The read-through cache ages by the injected clock (pure logic)."""

from __future__ import annotations

from channels.clock import FrozenClock
from router.store.cache import TTLCache


def test_entries_expire_by_the_injected_clock() -> None:
    clock = FrozenClock()
    cache: TTLCache[str, int] = TTLCache(5.0, clock)
    cache.put("a", 1)
    clock.advance(4.9)
    assert cache.get("a") == 1
    clock.advance(0.1)
    assert cache.get("a") is None


def test_zero_ttl_keeps_nothing() -> None:
    cache: TTLCache[str, int] = TTLCache(0.0, FrozenClock())
    assert cache.put("a", 1) == 1
    assert cache.get("a") is None


def test_a_full_cache_starts_again() -> None:
    cache: TTLCache[str, int] = TTLCache(5.0, FrozenClock(), max_items=2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (None, None, 3)
