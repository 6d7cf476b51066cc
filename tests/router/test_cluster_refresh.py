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

import pytest

from router.clock import FrozenClock
from router.store import open_store
from router.store.connect import RedisClient

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
