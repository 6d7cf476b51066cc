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
import json
from collections.abc import Mapping, Sequence
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from router.store.errors import connection_closed_under_us
from router.store.scripts import ATOMIC

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
        try:
            results = await self.pipe.execute(raise_on_error=False)
        except AttributeError as exc:
            lost = connection_closed_under_us(exc)
            if lost is None:
                raise
            raise lost from exc
        resent = False
        for index, value in enumerate(results):
            if isinstance(value, NoScriptError) and index in self._scripts:
                script, keys, args = self._scripts[index]
                results[index] = await script(keys=cast(Any, list(keys)), args=list(args))
                resent = True
            elif isinstance(value, Exception):
                raise connection_closed_under_us(value) or value
        if resent:
            # Sent on another connection after the WAIT: not covered by it.
            for index in self._waits:
                results[index] = 0
        return results


class Atomic:
    """Writes applied together, in one slot, as one script (`scripts.ATOMIC`): what a
    MULTI/EXEC would do, without one.

    On a Redis Cluster, redis-py runs a MULTI/EXEC pipeline through a thread with an event loop
    of its own for each queued command, and after a failover refreshes its slot map from
    there, racing the router's own loop (a `RuntimeError`, or a deadlocked process). A script
    call is routed by its keys like any command. Every key must share one hash tag (the
    script refuses nothing: Redis answers CROSSSLOT on a cluster). The queueing methods read
    like redis-py's; `execute` answers each write's reply in order (nil as None), or raises
    the first write's error once every other write was applied, as a MULTI/EXEC does.
    """

    def __init__(self, redis: aioredis.Redis, script: AsyncScript) -> None:
        """`script`: `scripts.ATOMIC` as the store registered it once (`atomic_script`)."""
        self._redis = redis
        self._script = script
        self._keys: list[str] = []
        self._ops: list[list[str | int]] = []

    def _op(self, command: str, key: str, *args: Arg) -> None:
        if key not in self._keys:
            self._keys.append(key)
        self._ops.append([command, self._keys.index(key) + 1, *(str(a) for a in args)])

    def hset(
        self,
        key: str,
        field: str | None = None,
        value: Arg | None = None,
        mapping: Mapping[str, Arg] | None = None,
    ) -> None:
        pairs: list[Arg] = [] if field is None or value is None else [field, value]
        for name, item in (mapping or {}).items():
            pairs += [name, item]
        self._op("HSET", key, *pairs)

    def hdel(self, key: str, *fields: str) -> None:
        self._op("HDEL", key, *fields)

    def hincrby(self, key: str, field: str, amount: int = 1) -> None:
        self._op("HINCRBY", key, field, amount)

    def rpush(self, key: str, *values: Arg) -> None:
        self._op("RPUSH", key, *values)

    def sadd(self, key: str, *members: Arg) -> None:
        self._op("SADD", key, *members)

    def srem(self, key: str, *members: Arg) -> None:
        self._op("SREM", key, *members)

    def zadd(self, key: str, mapping: Mapping[str, Arg]) -> None:
        pairs: list[Arg] = []
        for member, score in mapping.items():
            pairs += [score, member]
        self._op("ZADD", key, *pairs)

    def zrem(self, key: str, *members: Arg) -> None:
        self._op("ZREM", key, *members)

    def xadd(self, key: str, fields: Mapping[str, Arg]) -> None:
        pairs: list[Arg] = ["*"]
        for name, value in fields.items():
            pairs += [name, value]
        self._op("XADD", key, *pairs)

    def xack(self, key: str, group: str, *ids: str) -> None:
        self._op("XACK", key, group, *ids)

    def xdel(self, key: str, *ids: str) -> None:
        self._op("XDEL", key, *ids)

    async def execute(self) -> list[Any]:
        batch = Batch(self._redis)
        index = batch.script(self._script, self._keys, [json.dumps(self._ops)])
        replies = (await batch.execute())[index]
        failed = [reply for reply in replies if isinstance(reply, Exception)]
        if failed:
            # Like a MULTI/EXEC: every other write was applied; the first error is raised.
            raise failed[0]
        return [None if reply is False else reply for reply in replies]


def atomic_script(redis: aioredis.Redis) -> AsyncScript:
    """`scripts.ATOMIC`, registered once by a store that makes `Atomic` groups."""
    return redis.register_script(ATOMIC)


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
