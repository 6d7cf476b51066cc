"""One Redis round trip for several commands and scripts.

redis-py pipelines that run scripts ask the server `SCRIPT EXISTS` before every execution: a
second round trip. Scripts are loaded when the store opens, so a batch sends `EVALSHA`
directly; should the server have lost them (restarted, flushed), that one call is retried
with its source.

On a Redis Cluster a batch is sent as one request per node, all at once: commands on
different slots are not ordered against each other, so nothing may rely on that order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

Arg = str | int | float


class Batch:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self.pipe = redis.pipeline(transaction=False)
        self._scripts: dict[int, tuple[AsyncScript, Sequence[Arg], Sequence[Arg]]] = {}
        self._waits: list[int] = []

    def script(self, script: AsyncScript, keys: Sequence[Arg], args: Sequence[Arg]) -> int:
        """Queue a script call; returns its index in the results."""
        # By name, not `pipe.evalsha`: redis-py's Cluster pipeline refuses the method, but
        # routes the command by its keys like any other.
        self.pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
        index = len(self.pipe) - 1
        self._scripts[index] = (script, keys, args)
        return index

    def wait(self, key: str, replicas: int, timeout_ms: int) -> int:
        """Queue `WAIT replicas timeout_ms` after the writes queued so far on `key`'s server
        (same connection, so it covers them); returns its index: the replicas that
        acknowledged them (0 if a script had to be sent again, unconfirmed)."""
        if isinstance(self._redis, RedisCluster):
            node = self._redis.get_node_from_key(key)
            self.pipe.execute_command("WAIT", replicas, timeout_ms, target_nodes=node)
        else:
            self.pipe.execute_command("WAIT", replicas, timeout_ms)
        self._waits.append(self.index())
        return self.index()

    def index(self) -> int:
        """The results index of the command queued last."""
        return len(self.pipe) - 1

    async def execute(self) -> list[Any]:
        results = await self.pipe.execute(raise_on_error=False)
        resent = False
        for index, value in enumerate(results):
            if isinstance(value, NoScriptError) and index in self._scripts:
                script, keys, args = self._scripts[index]
                results[index] = await script(keys=cast(Any, list(keys)), args=list(args))
                resent = True
            elif isinstance(value, Exception):
                raise value
        if resent:
            # Sent on another connection after the WAIT: not covered by it.
            for index in self._waits:
                results[index] = 0
        return results


async def transaction(redis: aioredis.Redis) -> Pipeline:
    """A MULTI/EXEC pipeline, safe on a Redis Cluster whose slot map is due to be read again.

    redis-py's cluster transaction queues each command from a thread with an event loop of its
    own, and refreshes a stale slot map (after a failover, `CLUSTERDOWN`, a dead node) from
    there: it then races the refresh of the router's loop, ending in a `RuntimeError` or a
    deadlock of the whole process. The map is refreshed here first, on the router's loop; no
    await separates that from the queueing, so it is fresh while the commands are queued.
    """
    if isinstance(redis, RedisCluster):
        await redis.initialize()
    return redis.pipeline(transaction=True)


async def load_scripts(redis: aioredis.Redis | RedisCluster, sources: Sequence[str]) -> None:
    """Load `sources` into the script cache of every server that may run them.

    On a cluster each `SCRIPT LOAD` goes to every primary (redis-py's default target for it;
    its cluster pipeline refuses the command), all scripts at once. A replica promoted later
    lacks them until a `Batch` meets `NOSCRIPT` and sends the source.
    """
    if isinstance(redis, RedisCluster):
        await asyncio.gather(*(redis.script_load(source) for source in sources))
        return
    pipe = redis.pipeline(transaction=False)
    for source in sources:
        pipe.script_load(source)
    await pipe.execute()
