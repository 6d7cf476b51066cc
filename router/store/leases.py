"""Named leases in Redis: one holder at a time, for work exactly one router process does
(the daily reconciliation, `router.recon.schedule`).

A lease is a key holding its holder's token with an expiry (SET NX PX). The holder renews it
while it works; if the holder dies the key expires and another process takes the work over.
When the work is finished the holder marks the lease `done` for a while, so no process starts
it again.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from router.store import keys

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_FINISH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], 'done:' .. ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""


class Leases:
    """Take, renew and finish named leases."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._renew = redis.register_script(_RENEW)
        self._finish = redis.register_script(_FINISH)

    async def take(self, name: str, holder: str, ttl_ms: int) -> bool:
        """Hold `name` for `ttl_ms` unless someone holds it or finished it."""
        return bool(await self._redis.set(keys.lease(name), holder, nx=True, px=ttl_ms))

    async def renew(self, name: str, holder: str, ttl_ms: int) -> bool:
        """Extend `holder`'s lease; False when it is no longer `holder`'s (it expired)."""
        return bool(await self._renew(keys=[keys.lease(name)], args=[holder, ttl_ms]))

    async def finish(self, name: str, holder: str, keep_ms: int) -> bool:
        """Mark the work done for `keep_ms` (nobody takes it meanwhile)."""
        return bool(await self._finish(keys=[keys.lease(name)], args=[holder, keep_ms]))
