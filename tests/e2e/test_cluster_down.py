"""A Redis Cluster none of whose nodes answers, under a running router: `503 store_unavailable`
with `Retry-After`, never a 500, and the same requests go through once a node is back.

redis-py reads the cluster's slot map again after a refused connection; with no node to read
it from, it raises `RedisClusterException`, which the router answered with a 500 until
`router.store.connect.ClusterRedis` made it `ClusterUnreachable`. The cluster here is one
node holding every slot (the whole cluster goes down with it), with an append-only file so
that its data survives the restart.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from benchmarks.harness.topologies import (
    HOST,
    Node,
    answers,
    ask,
    free_port,
    server_argv,
    wait_until,
)
from tests.e2e.conftest import Simulator, start_router

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]


@pytest.fixture
def lone_node(tmp_path: Path) -> Iterator[Node]:
    """A one-node Redis Cluster that owns all 16384 slots."""
    port = free_port(cluster_bus=True)
    workdir = tmp_path / "cluster-node"
    workdir.mkdir()
    argv = server_argv(
        port,
        workdir,
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        str(workdir / "nodes.conf"),
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
    )
    node = Node(port, argv, workdir)
    node.start()
    try:
        wait_until("cluster node", lambda: answers(port))
        ask(port, "CLUSTER", "ADDSLOTSRANGE", "0", "16383")
        wait_until("cluster", lambda: "cluster_state:ok" in str(ask(port, "CLUSTER", "INFO")))
        yield node
    finally:
        node.stop()


async def test_the_api_answers_503_while_no_cluster_node_answers(
    lone_node: Node,
    simulator: Simulator,
    tmp_path: Path,
    serving: list[web.AppRunner],
    http: aiohttp.ClientSession,
) -> None:
    url = f"redis+cluster://{HOST}:{lone_node.port}"
    router = await start_router(url, simulator, tmp_path, serving, http)
    status, created = await router.create()
    assert status == 201, created
    lone_node.kill()
    # The first request meets the dead connection, the next ones the slot map that cannot be
    # read again: all are the same outage.
    for _ in range(3):
        status, body, headers = await router.request("GET", f"/v1/payments/{created['id']}")
        assert (status, body["error"]["code"]) == (503, "store_unavailable"), body
        assert headers["Retry-After"] == "1"
    lone_node.start()
    wait_until("cluster", lambda: "cluster_state:ok" in str(ask(lone_node.port, "CLUSTER", "INFO")))
    assert (await router.payment(created["id"]))["status"] == "pending"
