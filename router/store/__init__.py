"""Shared state in Redis: payments, refunds, idempotency records, merchants, the schedule.

`open_store(url)` connects to Redis, or with no URL builds the embedded in-process store
(fakeredis with Lua): the same code and the same scripts, for the sandbox only.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from router.clock import Clock
from router.settings import ConfigurationError, redacted
from router.store import scripts
from router.store.batch import load_scripts
from router.store.events import EventStore
from router.store.idempotency import IdempotencyStore
from router.store.merchants import MerchantStore
from router.store.payments import PaymentStore
from router.store.refunds import RefundStore
from router.store.schedule import Schedule
from router.store.sealing import SecretBox


@dataclass
class Store:
    """Every piece of shared state, over one Redis connection pool."""

    redis: aioredis.Redis
    payments: PaymentStore
    refunds: RefundStore
    events: EventStore
    idempotency: IdempotencyStore
    merchants: MerchantStore
    schedule: Schedule
    embedded: bool

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except Exception:
            return False

    async def close(self) -> None:
        await self.redis.aclose()


async def open_store(
    url: str | None, clock: Clock, secret_key: bytes | None = None, *, cache_s: float = 0.0
) -> Store:
    """Connect to `url`, or build the embedded store when `url` is None.

    `cache_s`: how long a router may keep merchants and keys it has read (see
    `router.store.merchants`); 0 for tools that must see every change at once.

    Raises `ConfigurationError` when the URL cannot be used (nothing listens, wrong password,
    no such database) or `PAYROUTER_SECRET_KEY` does not open the secrets already stored.
    """
    client: aioredis.Redis
    if url is None:
        import fakeredis

        client = fakeredis.FakeAsyncRedis(decode_responses=True)
    else:
        try:
            client = aioredis.Redis.from_url(url, decode_responses=True)
        except ValueError as exc:
            raise ConfigurationError(f"PAYROUTER_REDIS_URL {redacted(url)}: {exc}") from None
    try:
        box = await SecretBox.load(client, secret_key)
        await load_scripts(client, scripts.ALL)
    except (RedisError, OSError) as exc:
        await client.aclose()
        # The first commands: a failure here is the URL's (host, port, password, database).
        raise ConfigurationError(
            f"PAYROUTER_REDIS_URL: cannot use Redis at {redacted(url or '')}: {exc}"
        ) from None
    except BaseException:
        await client.aclose()
        raise
    return Store(
        redis=client,
        payments=PaymentStore(client, clock),
        refunds=RefundStore(client, clock),
        events=EventStore(client),
        idempotency=IdempotencyStore(client, clock),
        merchants=MerchantStore(client, clock, box, allow_live=url is not None, cache_s=cache_s),
        schedule=Schedule(client),
        embedded=url is None,
    )


__all__ = [
    "EventStore",
    "IdempotencyStore",
    "MerchantStore",
    "PaymentStore",
    "RefundStore",
    "Schedule",
    "Store",
    "open_store",
]
