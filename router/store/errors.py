"""What "the store is unavailable" looks like, in one place.

Redis that cannot be reached, times out, is still loading its data set, is a replica that
refuses writes, is a cluster without a master for a slot, or a cluster none of whose nodes
answers when the client reads its slot map again (`ClusterUnreachable`): every one of these
says "nothing was done, try again shortly", never "the request was wrong". The HTTP boundary
answers them with `503 store_unavailable` and `Retry-After`; background loops wait and try
again.
"""

from __future__ import annotations

import traceback

from redis.exceptions import (
    ClusterDownError,
    ConnectionError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    SlotNotCoveredError,
    TimeoutError,
    TryAgainError,
)


class ClusterUnreachable(ConnectionError):
    """A Redis Cluster client could not read the slot map again (after a failover, a dead node
    or `CLUSTERDOWN`): no node answered, or the nodes that did cover only part of the slots.

    redis-py raises its generic `RedisClusterException` for this, which also stands for
    mistakes in the caller's code; `router.store.connect` raises this instead, once the
    client has had a slot map, so that the outage is handled as one."""


STORE_UNAVAILABLE: tuple[type[Exception], ...] = (
    ConnectionError,  # also BusyLoadingError, AuthenticationError, MaxConnectionsError,
    # ClusterUnreachable
    TimeoutError,
    ClusterDownError,  # also MasterDownError
    TryAgainError,
    SlotNotCoveredError,
    ReadOnlyError,
    OutOfMemoryError,
)
"""Redis errors that mean the store cannot do anything now, not that a request is wrong."""


def connection_closed_under_us(exc: BaseException) -> ConnectionError | None:
    """The `ConnectionError` that `exc` stands for, when it is redis-py's cluster client
    writing to a connection another task closed meanwhile; else None.

    After a node fails, redis-py's cluster client closes every connection to it, including
    ones other requests are using at that moment; those fail with `AttributeError` (the
    connection's writer is gone) instead of a connection error. It is the same outage, not a
    bug in the caller.
    """
    if not isinstance(exc, AttributeError):
        return None
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames or not frames[-1].filename.endswith("redis/asyncio/connection.py"):
        return None
    lost = ConnectionError(f"connection closed while in use: {exc}")
    lost.__cause__ = exc
    return lost


StoreError = RedisError
"""Any failure of a store command, for callers outside `router.store` that must not know it is
Redis."""


def missing_stream_group(exc: BaseException) -> bool:
    """True when a stream or its consumer group is gone (Redis `NOGROUP`), so it must be made
    again rather than retried."""
    return isinstance(exc, ResponseError) and "NOGROUP" in str(exc)
