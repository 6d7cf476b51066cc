"""Payment links in Redis: a shop's permanent code, each scan of which makes a checkout.

A link is one hash under its own hash tag (`keys.payment_link`), found by its id alone when a
buyer scans it; the merchant's list is a sorted set in the merchant's slot
(`keys.merchant_links`). The record is written before the index, so a crash between them
leaves a link nobody lists, never a listed id without a record. `payments` counts the
checkouts made from the link (HINCRBY: no read-modify-write).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import redis.asyncio as aioredis

from router.store import keys
from router.store.codec import mapping, text


@dataclass(frozen=True)
class PaymentLink:
    """A payment link as stored."""

    id: str
    merchant_id: str
    amount: int | None
    """Fixed amount in minor units; None: the buyer enters it."""
    currency: str
    description: str
    return_url: str | None
    livemode: bool
    created_at: str
    created_ms: int
    active: bool = True
    payments: int = 0


def _decode(raw: dict[str, str]) -> PaymentLink:
    values = {name: json.loads(value) for name, value in raw.items()}
    return PaymentLink(**values)


class LinkStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def create(self, link: PaymentLink) -> None:
        fields: dict[Any, Any] = {k: json.dumps(v) for k, v in asdict(link).items()}
        await self._redis.hset(keys.payment_link(link.id), mapping=fields)
        await self._redis.zadd(keys.merchant_links(link.merchant_id), {link.id: link.created_ms})

    async def get(self, link_id: str) -> PaymentLink | None:
        raw = mapping(await self._redis.hgetall(keys.payment_link(link_id)))
        return _decode(raw) if raw else None

    async def page(
        self, mch: str, limit: int, before_ms: int | None = None
    ) -> tuple[list[PaymentLink], bool]:
        """The merchant's links, newest first, created before `before_ms`."""
        high = "+inf" if before_ms is None else f"({before_ms}"
        ids = await self._redis.zrevrangebyscore(
            keys.merchant_links(mch), high, "-inf", start=0, num=limit + 1
        )
        found = [await self.get(text(i)) for i in ids[:limit]]
        return [link for link in found if link is not None], len(ids) > limit

    async def disable(self, link_id: str) -> None:
        await self._redis.hset(keys.payment_link(link_id), "active", "false")

    async def count_payment(self, link_id: str) -> int:
        """Count one more checkout made from the link; returns the new count."""
        return int(await self._redis.hincrby(keys.payment_link(link_id), "payments", 1))
