"""Shared state in Redis: payments, refunds, idempotency records, merchants, the schedule,
breakers and health windows.

`open_store(url)` connects to Redis (one server, a Cluster or a Sentinel-managed primary: the
client comes from `router.store.connect`), or with no URL builds the embedded in-process store
(fakeredis with Lua): the same code and the same scripts, for the sandbox only.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from router.clock import Clock
from router.settings import ConfigurationError, redacted
from router.store import scripts
from router.store.batch import load_scripts
from router.store.breakers import BreakerStore
from router.store.changes import ChangeStore
from router.store.connect import (
    CONNECT_TIMEOUT_S,
    MIN_REPLY_TIMEOUT_S,
    REPLY_TIMEOUT_S,
    RedisClient,
    failure,
    redis_client,
    startup_deadline,
)
from router.store.events import EventStore
from router.store.idempotency import IdempotencyStore
from router.store.merchants import MerchantStore
from router.store.payments import PaymentStore, Replication
from router.store.refunds import RefundStore
from router.store.risk import SCRIPTS as RISK_SCRIPTS
from router.store.risk import RiskStore
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
    breakers: BreakerStore
    changes: ChangeStore
    """The change streams the record is drained from, and retention (`router.record.drain`)."""
    embedded: bool
    risk: RiskStore

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except Exception:
            return False

    async def close(self) -> None:
        await self.redis.aclose()


async def open_store(
    url: str | None,
    clock: Clock,
    secret_key: bytes | None = None,
    *,
    cache_s: float = 0.0,
    replication: Replication | None = None,
) -> Store:
    """Connect to `url`, or build the embedded store when `url` is None.

    `cache_s`: how long a router may keep merchants and keys it has read (see
    `router.store.merchants`); 0 for tools that must see every change at once.
    `replication`: wait for replicas after the writes of a create (`Replication`).

    Raises `ConfigurationError` when the URL cannot be used (nothing listens, nothing
    answers within `startup_deadline`, wrong password, no such database) or
    `PAYROUTER_SECRET_KEY` does not open the secrets already stored.
    """
    client: RedisClient
    if url is None:
        import fakeredis

        client = fakeredis.FakeAsyncRedis(decode_responses=True)
        deadline = None
    else:
        client = redis_client(url)
        deadline = startup_deadline(client)
    # The stores are typed against the single-server client; a cluster client answers the
    # same commands (the key layout keeps each multi-key command in one slot).
    redis = cast(aioredis.Redis, client)
    try:
        # One deadline over every first command: redis-py may retry each one, and a server
        # that trickles bytes never trips a per-read timeout.
        async with asyncio.timeout(deadline):
            await client.ping()
            box = await SecretBox.load(redis, secret_key)
            await load_scripts(client, (*scripts.ALL, *RISK_SCRIPTS))
    except TimeoutError:
        await client.aclose()
        raise ConfigurationError(
            f"PAYROUTER_REDIS_URL: no answer from Redis at {redacted(url or '')} within "
            f"{deadline:g} s (socket_connect_timeout + socket_timeout; set them in the URL's "
            "query to wait longer)"
        ) from None
    except (RedisError, RedisClusterException, OSError) as exc:
        await client.aclose()
        # The first commands: a failure here is the URL's (host, port, password, database).
        raise ConfigurationError(
            f"PAYROUTER_REDIS_URL: cannot use Redis at {redacted(url or '')}: "
            f"{failure(client, exc)}"
        ) from None
    except BaseException:
        await client.aclose()
        raise
    return Store(
        redis=redis,
        payments=PaymentStore(redis, clock, replication),
        refunds=RefundStore(redis, clock, replication),
        events=EventStore(redis, clustered=isinstance(client, RedisCluster)),
        idempotency=IdempotencyStore(redis, clock),
        merchants=MerchantStore(redis, clock, box, allow_live=url is not None, cache_s=cache_s),
        schedule=Schedule(redis),
        breakers=BreakerStore(redis),
        changes=ChangeStore(redis, clustered=isinstance(client, RedisCluster)),
        embedded=url is None,
        risk=RiskStore(redis),
    )


__all__ = [
    "CONNECT_TIMEOUT_S",
    "MIN_REPLY_TIMEOUT_S",
    "REPLY_TIMEOUT_S",
    "BreakerStore",
    "ChangeStore",
    "EventStore",
    "IdempotencyStore",
    "MerchantStore",
    "PaymentStore",
    "RedisClient",
    "RefundStore",
    "Replication",
    "RiskStore",
    "Schedule",
    "Store",
    "open_store",
    "redis_client",
    "startup_deadline",
]
