"""The Redis topology launchers moved to `benchmarks.harness.topologies` (the benchmark starts
a cluster too); the names are kept here for the tests that import them from this module."""

from benchmarks.harness.topologies import (
    HOST,
    SERVICE,
    RedisClusterSetup,
    RedisSentinelSetup,
    TopologyError,
    ask,
    ask_list,
    start_cluster,
    start_sentinel,
)

__all__ = [
    "HOST",
    "SERVICE",
    "RedisClusterSetup",
    "RedisSentinelSetup",
    "TopologyError",
    "ask",
    "ask_list",
    "start_cluster",
    "start_sentinel",
]
