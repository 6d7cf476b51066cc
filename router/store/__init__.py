"""Shared state in Redis: payments, refunds, idempotency records, merchants, the schedule,
breakers and health windows.

`open_store(url)` connects to Redis, or with no URL builds the embedded in-process store
(fakeredis with Lua): the same code and the same scripts, for the sandbox only.

Every connection has a connect timeout and a reply timeout (`socket_connect_timeout`,
`socket_timeout`: the URL's query values, else the defaults below), so an address that never
answers ends start-up with one line within their sum, and a running router's command against a
Redis gone silent fails (`503 store_unavailable`) instead of hanging. Redis-py applies
`socket_timeout` to blocking reads too: the longest the router makes (the webhook dispatcher's
`XREADGROUP ... BLOCK 200`) is well under the smallest value accepted here.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from router.clock import Clock
from router.settings import ConfigurationError, redacted
from router.store import scripts
from router.store.batch import load_scripts
from router.store.breakers import BreakerStore
from router.store.events import EventStore
from router.store.idempotency import IdempotencyStore
from router.store.merchants import MerchantStore
from router.store.payments import PaymentStore, Replication
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
    breakers: BreakerStore
    embedded: bool

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except Exception:
            return False

    async def close(self) -> None:
        await self.redis.aclose()


CONNECT_TIMEOUT_S = 5.0
"""Default `socket_connect_timeout`: a blackholed host fails in this long, not minutes."""
REPLY_TIMEOUT_S = 5.0
"""Default `socket_timeout`: the longest one command waits for its answer."""
MIN_REPLY_TIMEOUT_S = 1.0
"""The least `socket_timeout` accepted: above the longest blocking read the router makes."""


def redis_client(url: str) -> aioredis.Redis:
    """A client for `url` (not yet connected) with connect and reply timeouts: the URL's
    `socket_connect_timeout` / `socket_timeout`, else `CONNECT_TIMEOUT_S` / `REPLY_TIMEOUT_S`.

    Raises `ConfigurationError` for a URL redis-py cannot read or timeouts that cannot work.
    """
    try:
        # Query values in the URL win over these keyword defaults (redis-py's rule).
        client = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=REPLY_TIMEOUT_S,
        )
    except ValueError as exc:
        raise ConfigurationError(f"PAYROUTER_REDIS_URL {redacted(url)}: {exc}") from None
    options = client.connection_pool.connection_kwargs
    for name, least, wanted in (
        ("socket_connect_timeout", math.ulp(0), "above 0"),
        ("socket_timeout", MIN_REPLY_TIMEOUT_S, f"at least {MIN_REPLY_TIMEOUT_S:g}"),
    ):
        value = options.get(name)
        if not (isinstance(value, float | int) and math.isfinite(value) and value >= least):
            raise ConfigurationError(
                f"PAYROUTER_REDIS_URL {redacted(url)}: {name} must be a number of seconds "
                f"{wanted}, not {value}"
            )
    return client


def startup_deadline(client: aioredis.Redis) -> float:
    """Seconds a store may take to answer its first commands: one connect and one reply."""
    options = client.connection_pool.connection_kwargs
    return float(options["socket_connect_timeout"]) + float(options["socket_timeout"])


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
    client: aioredis.Redis
    if url is None:
        import fakeredis

        client = fakeredis.FakeAsyncRedis(decode_responses=True)
        deadline = None
    else:
        client = redis_client(url)
        deadline = startup_deadline(client)
    try:
        # One deadline over every first command: redis-py may retry each one, and a server
        # that trickles bytes never trips a per-read timeout.
        async with asyncio.timeout(deadline):
            await client.ping()
            box = await SecretBox.load(client, secret_key)
            await load_scripts(client, scripts.ALL)
    except TimeoutError:
        await client.aclose()
        raise ConfigurationError(
            f"PAYROUTER_REDIS_URL: no answer from Redis at {redacted(url or '')} within "
            f"{deadline:g} s (socket_connect_timeout + socket_timeout; set them in the URL's "
            "query to wait longer)"
        ) from None
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
        payments=PaymentStore(client, clock, replication),
        refunds=RefundStore(client, clock, replication),
        events=EventStore(client, clustered=isinstance(client, RedisCluster)),
        idempotency=IdempotencyStore(client, clock),
        merchants=MerchantStore(client, clock, box, allow_live=url is not None, cache_s=cache_s),
        schedule=Schedule(client),
        breakers=BreakerStore(client),
        embedded=url is None,
    )


__all__ = [
    "BreakerStore",
    "EventStore",
    "IdempotencyStore",
    "MerchantStore",
    "PaymentStore",
    "RefundStore",
    "Replication",
    "Schedule",
    "Store",
    "open_store",
    "redis_client",
    "startup_deadline",
]
