"""The store's atomic multi-key writes on a Redis Cluster right after a failover, when the
client's slot map is due to be read again.

redis-py's cluster client marks its map stale on a refused connection or `CLUSTERDOWN` (it
closes its connections: `aclose()`) and reads it again before its next command. Its cluster
transaction (MULTI/EXEC) queues each command from a thread with an event loop of its own: a
refresh started there raced the one the router's other requests run (`RuntimeError: ... bound
to a different event loop`) and failed webhook deliveries and other writes right after every
failover. The store writes such groups with one script instead (`router.store.batch.Atomic`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

import pytest
from redis.asyncio.cluster import RedisCluster

from router.clock import FrozenClock
from router.store import open_store
from router.store.batch import Batch
from router.store.connect import RedisClient
from router.store.errors import STORE_UNAVAILABLE

pytestmark = pytest.mark.cluster

MCH = "mch_refresh0000001"


async def stale(client: RedisClient) -> None:
    """What redis-py does itself on `CLUSTERDOWN` or a dead node: close every connection and
    read the slot map again before the next command."""
    await client.aclose()


@pytest.mark.timeout(30)
async def test_transactions_run_while_the_slot_map_is_read_again(redis_cluster_url: str) -> None:
    store = await open_store(redis_cluster_url, FrozenClock())
    endpoints = store.events.endpoints
    try:
        await stale(store.redis)
        urls = [f"https://shop.example/hooks/{n}" for n in range(8)]
        # Together, as requests and the dispatcher do: one refreshes, the others wait for it.
        await asyncio.gather(
            store.ping(), *(endpoints.disable(MCH, url, 1000, "evt_x") for url in urls)
        )
        assert {e.url for e in await endpoints.list(MCH)} == set(urls)
        await stale(store.redis)
        enabled = await asyncio.gather(*(endpoints.enable(MCH, url) for url in urls))
        assert enabled == [True] * len(urls)
    finally:
        await store.close()


def test_no_store_code_makes_a_multi_exec_pipeline() -> None:
    """Atomic groups of writes go through `router.store.batch.Atomic` (one script)."""
    root = Path(__file__).parents[2] / "router"
    makers = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if "transaction=True" in path.read_text(encoding="utf-8")
    ]
    assert makers == []


@pytest.mark.timeout(60)
async def test_connections_closed_while_in_use_are_an_outage_not_a_bug(
    redis_cluster_url: str,
) -> None:
    """redis-py closes every connection of the client when a node fails, including ones other
    requests are writing to at that moment; those requests used to fail with `AttributeError`
    (a 500) where they meet a closed connection. They are a `ConnectionError` now, one of
    `STORE_UNAVAILABLE` (a 503), like the outage they come from."""
    store = await open_store(redis_cluster_url, FrozenClock())
    errors: list[BaseException] = []
    done = asyncio.Event()

    async def requests(n: int) -> None:
        for i in range(12):
            try:
                if i % 2:
                    await store.redis.set(f"{{p{n}}}k{i}", i)
                else:
                    batch = Batch(store.redis)
                    batch.pipe.set(f"{{p{n}}}b{i}", i)
                    await batch.execute()
            except Exception as exc:
                errors.append(exc)

    async def failures() -> None:
        # What redis-py does to a node it finds dead: close all its connections, in use or not.
        client = cast(RedisCluster, store.redis)
        while not done.is_set():
            for node in client.get_nodes():
                await node.disconnect()
            await asyncio.sleep(0.002)

    try:
        closer = asyncio.create_task(failures())
        await asyncio.gather(*(requests(n) for n in range(6)))
        done.set()
        await closer
    finally:
        await store.close()
    unexpected = [e for e in errors if not isinstance(e, STORE_UNAVAILABLE)]
    assert not unexpected, unexpected[:3]
