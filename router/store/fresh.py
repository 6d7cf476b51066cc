"""Pooled Redis connections that notice a server which went away while they sat idle.

Before lending a pooled connection, redis-py asks it `can_read()`: anything waiting on an idle
connection (a reply nobody read, or the end of the stream) means it must be dropped and made
again. Two things defeat that check after a Redis restart, and each costs a failed command
("Connection closed by server"): a 503 for a request, a back-off and a postponed re-query for a
background loop, although the new server is up.

- redis-py 8 skips the check when its pool's maintenance notifications are on, and their
  default "auto" counts as on. `router.store.connect` turns them off (they need RESP3, which
  the router does not speak).
- The asyncio connection answers from what the event loop has already read. The old server's
  end of stream is in the kernel at once, but a busy loop may not have read it yet when the
  next command takes the connection. The connections here also poll their socket: anything
  readable on an idle connection counts as "has data", and redis-py reconnects before
  sending.

Commands themselves are never retried (a command whose reply was lost may have run); only a
connection found dead before a command is written is replaced. TLS connections keep
redis-py's own check: a TLS session may have records waiting that are not replies.
"""

from __future__ import annotations

import asyncio
import select

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.sentinel import SentinelManagedConnection

_WAITING = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP | select.POLLRDHUP


def socket_waiting(writer: asyncio.StreamWriter | None) -> bool:
    """True when the kernel holds something for this idle connection: bytes nobody asked
    for, an end of stream, or an error."""
    if writer is None:
        return False
    sock = writer.get_extra_info("socket")
    if sock is None:
        return False
    poller = select.poll()
    poller.register(sock.fileno(), _WAITING)
    return bool(poller.poll(0))


class _SocketCheck(AbstractConnection):
    """The check itself, put before redis-py's connection class in each `Fresh*` class."""

    async def can_read(self) -> bool:
        """Whether anything waits on this idle connection: redis-py's buffer, then the socket."""
        return await super().can_read() or socket_waiting(self._writer)


class FreshConnection(_SocketCheck, aioredis.Connection):
    """A TCP connection checked against its socket before it is lent (see the module)."""


class FreshUnixConnection(_SocketCheck, aioredis.UnixDomainSocketConnection):
    """A Unix-socket connection checked against its socket before it is lent."""


class FreshSentinelConnection(_SocketCheck, SentinelManagedConnection):
    """A connection to the primary a Sentinel names, checked before it is lent."""


def use_fresh_connections(pool: aioredis.ConnectionPool) -> None:
    """Make `pool` open `Fresh*` connections instead of redis-py's plain ones (TLS excepted)."""
    swaps: dict[type[aioredis.Connection | aioredis.UnixDomainSocketConnection], type] = {
        aioredis.Connection: FreshConnection,
        aioredis.UnixDomainSocketConnection: FreshUnixConnection,
    }
    fresh = swaps.get(pool.connection_class)  # type: ignore[arg-type]
    if fresh is not None:
        pool.connection_class = fresh
