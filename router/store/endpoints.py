"""Webhook endpoints disabled by a `410 Gone`, per merchant.

An endpoint is a URL exactly as the merchant gave it (a payment's `notify_url` or the
merchant's default). Membership is a set, checked on every delivery; when and by which event
it was disabled is kept beside it, for the merchant and the operator to see. Re-enabling
removes both: later deliveries go out again, and dead letters can be resent.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import redis.asyncio as aioredis

from router.store import keys
from router.store.batch import Atomic, atomic_script
from router.store.codec import text


def endpoint_id(url: str) -> str:
    """A stable public id for an endpoint URL (the URL itself is awkward in a path)."""
    return "we_" + hashlib.sha256(url.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class DisabledEndpoint:
    url: str
    disabled_at_ms: int | None
    """None for endpoints disabled before the time was kept."""
    event_id: str | None
    """The event whose delivery was answered with 410."""

    @property
    def id(self) -> str:
        return endpoint_id(self.url)


class DisabledEndpoints:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._atomic = atomic_script(redis)

    async def disable(self, mch: str, url: str, at_ms: int, event_id: str) -> None:
        pipe = Atomic(self._redis, self._atomic)
        pipe.sadd(keys.disabled_endpoints(mch), url)
        info = json.dumps({"at_ms": at_ms, "event": event_id})
        pipe.hset(keys.disabled_endpoint_info(mch), url, info)
        await pipe.execute()

    async def is_disabled(self, mch: str, url: str) -> bool:
        return bool(await self._redis.sismember(keys.disabled_endpoints(mch), url))

    async def list(self, mch: str) -> list[DisabledEndpoint]:
        """The merchant's disabled endpoints, most recently disabled first."""
        urls = sorted(text(u) for u in await self._redis.smembers(keys.disabled_endpoints(mch)))
        if not urls:
            return []
        infos = await self._redis.hmget(keys.disabled_endpoint_info(mch), urls)
        out = []
        for url, raw in zip(urls, infos, strict=True):
            info = json.loads(text(raw)) if raw is not None else {}
            out.append(DisabledEndpoint(url, info.get("at_ms"), info.get("event")))
        return sorted(out, key=lambda e: -(e.disabled_at_ms or 0))

    async def find(self, mch: str, url_or_id: str) -> DisabledEndpoint | None:
        """The disabled endpoint with this URL or id."""
        for endpoint in await self.list(mch):
            if url_or_id in (endpoint.url, endpoint.id):
                return endpoint
        return None

    async def enable(self, mch: str, url: str) -> bool:
        """Deliver to `url` again. False when it was not disabled."""
        pipe = Atomic(self._redis, self._atomic)
        pipe.srem(keys.disabled_endpoints(mch), url)
        pipe.hdel(keys.disabled_endpoint_info(mch), url)
        removed, _ = await pipe.execute()
        return bool(removed)
