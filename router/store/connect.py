"""The one place that turns `PAYROUTER_REDIS_URL` into a Redis client.

- `redis://`, `rediss://`, `unix://`: one server (`redis.asyncio.Redis.from_url`);
- `redis+cluster://HOST:PORT[,HOST:PORT...]`: a Redis Cluster reached through any of its seed
  nodes (`ClusterRedis`, a `RedisCluster`, which learns the rest of the cluster from the
  first one answering);
- `redis+sentinel://HOST:PORT[,HOST:PORT...]/SERVICE[/DB]`: the primary the Sentinels name
  for SERVICE (`Sentinel.master_for`), followed across failovers.

Every client has a connect timeout and a reply timeout (`socket_connect_timeout`,
`socket_timeout`: the URL's query values, else the defaults below), so an address that never
answers ends start-up with one line within `startup_deadline`, and a running router's command
against a Redis gone silent fails instead of hanging. Redis-py applies `socket_timeout` to
blocking reads too: the longest the router makes (the webhook dispatcher's
`XREADGROUP ... BLOCK 200`) is well under the smallest value accepted here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qsl, unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import MasterNotFoundError, Sentinel
from redis.exceptions import RedisClusterException
from redis.maint_notifications import MaintNotificationsConfig

from router.settings import ConfigurationError, redacted
from router.store.errors import ClusterUnreachable, connection_closed_under_us
from router.store.fresh import FreshSentinelConnection, use_fresh_connections

RedisClient = aioredis.Redis | RedisCluster
"""What `redis_client` returns: one server (also a Sentinel-managed primary) or a cluster."""

CONNECT_TIMEOUT_S = 5.0
"""Default `socket_connect_timeout`: a blackholed host fails in this long, not minutes."""
REPLY_TIMEOUT_S = 5.0
"""Default `socket_timeout`: the longest one command waits for its answer."""
MIN_REPLY_TIMEOUT_S = 1.0
"""The least `socket_timeout` accepted: above the longest blocking read the router makes."""

CLUSTER_SCHEME = "redis+cluster"
SENTINEL_SCHEME = "redis+sentinel"

_TIMEOUTS = ("socket_connect_timeout", "socket_timeout")
# redis-py's own URLs also take the credentials as query values: so do these.
_CLUSTER_OPTIONS = frozenset((*_TIMEOUTS, "username", "password"))
_SENTINEL_OPTIONS = frozenset((*_CLUSTER_OPTIONS, "sentinel_username", "sentinel_password"))


class ClusterRedis(RedisCluster):
    """A Redis Cluster client for which a slot map that cannot be read again is an outage.

    redis-py reads the map again before the next command after a refused connection or
    `CLUSTERDOWN`; when no node answers it raises `RedisClusterException`, which the router
    would take for a bug (a 500, a background loop's stack trace every pass). Once the client
    has had a map, that failure is `ClusterUnreachable`, one of `STORE_UNAVAILABLE`. The first
    map's failure stays as redis-py words it: `open_store` turns it into a start-up error.
    """

    _mapped = False

    async def initialize(self, *args: Any, **kwargs: Any) -> RedisCluster:
        """Read the slot map if it is due (see the class)."""
        try:
            await super().initialize(*args, **kwargs)
        except RedisClusterException as exc:
            if not self._mapped:
                raise
            raise ClusterUnreachable(f"the cluster's slot map cannot be read: {exc}") from exc
        self._mapped = True
        return self

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        """Run a command; a connection closed under it is a `ConnectionError` (see
        `connection_closed_under_us`)."""
        try:
            return await super().execute_command(*args, **kwargs)
        except AttributeError as exc:
            lost = connection_closed_under_us(exc)
            if lost is None:
                raise
            raise lost from exc


class SentinelRedis(aioredis.Redis):
    """A client of the primary a `Sentinel` names, which also closes the Sentinel's own
    connections when it closes (they would otherwise stay open until garbage collection)."""

    owner: Sentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        """Close the primary's connections, then the Sentinels'."""
        try:
            await super().aclose(close_connection_pool)
        finally:
            if self.owner is not None:
                await self.owner.aclose()


@dataclass(frozen=True)
class _Topology:
    """What a `redis+cluster://` or `redis+sentinel://` URL says."""

    nodes: list[tuple[str, int]]
    username: str | None
    password: str | None
    path: list[str]
    options: dict[str, str]


def redis_client(url: str) -> RedisClient:
    """A client for `url` (not yet connected) with connect and reply timeouts: the URL's
    `socket_connect_timeout` / `socket_timeout`, else `CONNECT_TIMEOUT_S` / `REPLY_TIMEOUT_S`.

    Raises `ConfigurationError` naming `PAYROUTER_REDIS_URL` (password redacted) for a URL
    that cannot be read: no hosts, a bad port, no service, a bad database, timeouts that
    cannot work.
    """
    scheme = url.partition("://")[0].lower()
    if scheme == CLUSTER_SCHEME:
        return _cluster(url)
    if scheme == SENTINEL_SCHEME:
        return _sentinel(url)
    try:
        # Query values in the URL win over these keyword defaults (redis-py's rule).
        client = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=REPLY_TIMEOUT_S,
            # redis-py 8 defaults this to "auto", which (truthy) also turns off its check of
            # pooled connections before lending them; the router speaks RESP2, where these
            # notifications never come.
            maint_notifications_config=MaintNotificationsConfig(enabled=False),
        )
    except ValueError as exc:
        raise _error(url, str(exc)) from None
    use_fresh_connections(client.connection_pool)
    options = client.connection_pool.connection_kwargs
    _check_timeouts(url, options.get("socket_connect_timeout"), options.get("socket_timeout"))
    return client


def startup_deadline(client: RedisClient) -> float:
    """Seconds a store may take to answer its first commands.

    One connect and one reply for a single server; twice that for a cluster or a Sentinel
    set-up, where the client first asks a seed node or a Sentinel where to go, then goes there.
    """
    if isinstance(client, RedisCluster):
        options = client.get_connection_kwargs()
        steps = 2
    else:
        options = client.connection_pool.connection_kwargs
        steps = 2 if isinstance(client, SentinelRedis) else 1
    connect, reply = (cast(float, options[name]) for name in _TIMEOUTS)
    return steps * (connect + reply)


def failure(client: RedisClient, exc: BaseException) -> str:
    """What went wrong with a first command, in words for one line: redis-py's text for a
    Sentinel that names no primary lists every Sentinel's connection settings."""
    if isinstance(exc, MasterNotFoundError) and isinstance(client, SentinelRedis):
        pool = client.connection_pool
        service = getattr(pool, "service_name", "?")
        return (
            f"no Sentinel named a primary for service {service!r} (none answered, or none "
            "monitors that service)"
        )
    return str(exc)


def _cluster(url: str) -> ClusterRedis:
    topology = _topology(url, _CLUSTER_OPTIONS)
    if [part for part in topology.path if part != "0"]:
        raise _error(url, "a Redis Cluster has only database 0; give no path")
    connect, reply = _timeouts(url, topology.options)
    return ClusterRedis(
        startup_nodes=[ClusterNode(host, port) for host, port in topology.nodes],
        username=topology.username,
        password=topology.password,
        decode_responses=True,
        socket_connect_timeout=connect,
        socket_timeout=reply,
    )


def _sentinel(url: str) -> SentinelRedis:
    topology = _topology(url, _SENTINEL_OPTIONS)
    if not topology.path or not topology.path[0]:
        raise _error(url, "name the Sentinel service after the hosts: .../SERVICE[/DB]")
    if len(topology.path) > 2:
        raise _error(url, "only SERVICE and DB may follow the hosts: .../SERVICE[/DB]")
    service = topology.path[0]
    database = topology.path[1] if len(topology.path) == 2 else "0"
    if not (database.isascii() and database.isdigit()):
        raise _error(url, f"the database after the service must be a number, not {database!r}")
    connect, reply = _timeouts(url, topology.options)
    # The Sentinels get the timeouts and their own credentials, never the data nodes'.
    sentinel_kwargs: dict[str, object] = {
        "socket_connect_timeout": connect,
        "socket_timeout": reply,
    }
    for name in ("username", "password"):
        value = topology.options.get(f"sentinel_{name}")
        if value is not None:
            sentinel_kwargs[name] = value
    sentinel = Sentinel(topology.nodes, sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call]
    client = sentinel.master_for(
        service,
        redis_class=SentinelRedis,
        db=int(database),
        username=topology.username,
        password=topology.password,
        decode_responses=True,
        socket_connect_timeout=connect,
        socket_timeout=reply,
        connection_class=FreshSentinelConnection,
    )
    assert isinstance(client, SentinelRedis)
    client.owner = sentinel
    return client


def _topology(url: str, allowed: frozenset[str]) -> _Topology:
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username: str | None = None
    password: str | None = None
    if userinfo:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    nodes = [_node(url, item) for item in hosts.split(",")] if hosts else []
    if not nodes:
        raise _error(url, "name at least one HOST:PORT after the scheme")
    options: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in allowed:
            raise _error(url, f"unknown option {name!r} (known: {', '.join(sorted(allowed))})")
        options[name] = value
    username = options.get("username", username)
    password = options.get("password", password)
    path = [unquote(part) for part in parts.path.split("/")[1:]]
    if path and not path[-1]:
        path.pop()
    return _Topology(nodes, username, password, path, options)


def _node(url: str, item: str) -> tuple[str, int]:
    try:
        parts = urlsplit(f"//{item}")
        port = parts.port
    except ValueError:
        port = None
        parts = None
    if parts is None or not parts.hostname or port is None or port == 0:
        raise _error(url, f"each node must be HOST:PORT with a port from 1 to 65535, not {item!r}")
    return parts.hostname, port


def _timeouts(url: str, options: dict[str, str]) -> tuple[float, float]:
    values: list[float] = []
    for name, default in zip(_TIMEOUTS, (CONNECT_TIMEOUT_S, REPLY_TIMEOUT_S), strict=True):
        text = options.get(name)
        try:
            values.append(default if text is None else float(text))
        except ValueError:
            raise _error(url, f"{name} must be a number of seconds, not {text!r}") from None
    _check_timeouts(url, values[0], values[1])
    return values[0], values[1]


def _check_timeouts(url: str, connect: object, reply: object) -> None:
    for name, value, least, wanted in (
        ("socket_connect_timeout", connect, math.ulp(0), "above 0"),
        ("socket_timeout", reply, MIN_REPLY_TIMEOUT_S, f"at least {MIN_REPLY_TIMEOUT_S:g}"),
    ):
        if not (isinstance(value, float | int) and math.isfinite(value) and value >= least):
            raise _error(url, f"{name} must be a number of seconds {wanted}, not {value}")


def _error(url: str, problem: str) -> ConfigurationError:
    return ConfigurationError(f"PAYROUTER_REDIS_URL {redacted(url)}: {problem}")
