"""The bench's Redis probes on a real Redis Cluster (`redis_cluster` fixture): the counters
are summed over every primary, and MONITOR on each primary puts every command in its slot
and on the node that serves that slot."""

from __future__ import annotations

from collections import Counter

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from benchmarks.harness.probes import MonitorTap, RedisCounters
from benchmarks.harness.stats import redis_delta
from benchmarks.harness.topologies import RedisClusterSetup
from router.store import redis_client
from router.store.keys import PARTITIONS, TAGS

pytestmark = pytest.mark.cluster

SCRIPT = "redis.call('hset', KEYS[1], 'f', ARGV[1]); redis.call('expire', KEYS[1], 60); return 1"


async def cluster_client(url: str) -> RedisCluster:
    """A cluster client already connected to every primary: the handshakes of its first
    connections (HELLO) are not part of what the tests count."""
    client = redis_client(url)
    assert isinstance(client, RedisCluster)
    for tag in TAGS:
        await client.set(f"pr:{{{tag}}}:probe", "0")
    return client


def node_of(client: RedisCluster, tag: str) -> str:
    """The address of the primary serving the slot of hash tag `tag`."""
    node = client.get_node_from_key(f"{{{tag}}}")
    assert node is not None
    return str(node.name)


async def test_counters_are_summed_over_every_primary(
    redis_cluster_url: str, redis_cluster: RedisClusterSetup
) -> None:
    counters = await RedisCounters.connect(redis_cluster_url)
    client = await cluster_client(redis_cluster_url)
    try:
        ports = sorted(address.port for address in counters.addresses)
        assert ports == redis_cluster.primaries()
        before = await counters.snapshot()
        for tag in TAGS:
            await client.set(f"pr:{{{tag}}}:probe", "1")
        after = await counters.snapshot()
    finally:
        await client.aclose()
        await counters.close()
    # One SET and one socket read each, wherever its slot is; the three INFOs left out.
    delta = redis_delta(before, after, PARTITIONS, own_reads=len(ports))
    assert delta is not None
    assert delta["by_command"] == {"set": 1.0}
    assert delta["round_trips_per_item"] == 1.0


async def test_monitor_puts_commands_in_their_slots_and_nodes(redis_cluster_url: str) -> None:
    counters = await RedisCounters.connect(redis_cluster_url)
    client = await cluster_client(redis_cluster_url)
    tap = MonitorTap(counters.addresses)
    try:
        await tap.start()
        for tag in TAGS:
            await client.set(f"pr:{{{tag}}}:probe", "1")
        await client.eval(SCRIPT, 1, f"pr:{{{TAGS[5]}}}:hash", "v")
        tally = await tap.stop()
        # Partitions per primary, as the cluster's slot map says.
        served = Counter(node_of(client, tag) for tag in TAGS)
    finally:
        await client.aclose()
        await counters.close()
    slots = {key_slot(tag.encode()): 1 for tag in TAGS}
    slots[key_slot(TAGS[5].encode())] += 3  # EVAL, and the HSET and EXPIRE it ran
    assert tally.slots == Counter(slots)
    assert tally.from_lua == 2 and tally.unkeyed == 0 and tally.multi_slot == 0
    served[node_of(client, TAGS[5])] += 3
    assert tally.nodes == served
    summary = tally.summary(PARTITIONS, PARTITIONS, [a.name for a in counters.addresses])
    assert summary["commands"] == PARTITIONS + 3 and summary["slots_used"] == PARTITIONS
    busiest = summary["busiest_slot"]
    assert isinstance(busiest, dict) and busiest["example_key"] == f"pr:{{{TAGS[5]}}}:probe"
