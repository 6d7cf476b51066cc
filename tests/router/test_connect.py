"""`PAYROUTER_REDIS_URL` for every topology: how each URL form is read (no server needed), and
the clients it gives against a real Redis Cluster and a real Sentinel set-up
(`tests.redis_topologies`), including a Sentinel failover the client follows by itself."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ClusterDownError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from benchmarks.harness.topologies import RedisClusterSetup, RedisSentinelSetup, ask
from router.clock import FrozenClock
from router.settings import ConfigurationError, Settings, redacted
from router.store import (
    CONNECT_TIMEOUT_S,
    REPLY_TIMEOUT_S,
    open_store,
    redis_client,
    startup_deadline,
)
from router.store.batch import load_scripts
from router.store.connect import SentinelRedis
from tests.router.test_cli import UNREACHED_DATABASE, one_line_exit_2, payrouter
from tests.router.test_cli import closed_port as closed_port  # a fixture, used by name
from tests.router.test_cli import good_routing as good_routing  # a fixture, used by name
from tests.router.test_store_timeouts import FAST
from tests.router.test_store_timeouts import silent as silent  # a fixture, used by name

INCR = "return redis.call('INCRBY', KEYS[1], ARGV[1])"


def test_a_cluster_url_names_every_seed_node_and_its_credentials() -> None:
    client = redis_client("redis+cluster://ops:hunter2@10.0.0.1:7000,10.0.0.2:7001,[::1]:7002")
    assert isinstance(client, RedisCluster)
    assert sorted(client.nodes_manager.startup_nodes) == [
        "10.0.0.1:7000",
        "10.0.0.2:7001",
        "::1:7002",
    ]
    options = client.get_connection_kwargs()
    assert (options["username"], options["password"]) == ("ops", "hunter2")
    assert (options["socket_connect_timeout"], options["socket_timeout"]) == (
        CONNECT_TIMEOUT_S,
        REPLY_TIMEOUT_S,
    )
    assert startup_deadline(client) == 2 * (CONNECT_TIMEOUT_S + REPLY_TIMEOUT_S)
    told = redis_client(
        "redis+cluster://h:7000/?socket_connect_timeout=2&socket_timeout=30&password=other"
    )
    assert startup_deadline(told) == 64.0
    assert told.get_connection_kwargs()["password"] == "other"


def test_a_sentinel_url_names_the_sentinels_the_service_and_the_database() -> None:
    client = redis_client(
        "redis+sentinel://:hunter2@10.0.0.1:26379,10.0.0.2:26380/orders/3"
        "?sentinel_password=s3cret&socket_timeout=2"
    )
    assert isinstance(client, SentinelRedis)
    assert client.owner is not None
    sentinels = [s.connection_pool.connection_kwargs for s in client.owner.sentinels]
    assert [(s["host"], s["port"]) for s in sentinels] == [
        ("10.0.0.1", 26379),
        ("10.0.0.2", 26380),
    ]
    # The Sentinels get their own password, the data nodes theirs.
    assert {s["password"] for s in sentinels} == {"s3cret"}
    pool = client.connection_pool
    assert pool.service_name == "orders"  # type: ignore[attr-defined]
    options = pool.connection_kwargs
    assert (options["db"], options["password"], options["socket_timeout"]) == (3, "hunter2", 2.0)
    assert startup_deadline(client) == 2 * (CONNECT_TIMEOUT_S + 2.0)
    plain = redis_client("redis+sentinel://h:26379/payrouter")
    assert plain.connection_pool.connection_kwargs["db"] == 0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("redis+cluster://", "at least one HOST:PORT"),
        ("redis+cluster://:hunter2@", "at least one HOST:PORT"),
        ("redis+cluster://:hunter2@h1:7000,h2", "HOST:PORT"),
        ("redis+cluster://:hunter2@h1:7000,,h2:7001", "HOST:PORT"),
        ("redis+cluster://:hunter2@h1:99999", "HOST:PORT"),
        ("redis+cluster://:hunter2@h1:port", "HOST:PORT"),
        ("redis+cluster://:hunter2@h1:7000/2", "only database 0"),
        ("redis+cluster://:hunter2@h1:7000?socket_timeout=0.5", "socket_timeout"),
        ("redis+cluster://:hunter2@h1:7000?socket_timeout=soon", "socket_timeout"),
        ("redis+cluster://:hunter2@h1:7000?bogus=1", "unknown option 'bogus'"),
        ("redis+cluster://h1:7000?password=hunter2&socket_timeout=0", "socket_timeout"),
        ("redis+sentinel://:hunter2@h1:26379", "name the Sentinel service"),
        ("redis+sentinel://:hunter2@h1:26379/", "name the Sentinel service"),
        ("redis+sentinel://:hunter2@/payrouter", "at least one HOST:PORT"),
        ("redis+sentinel://:hunter2@h1/payrouter", "HOST:PORT"),
        ("redis+sentinel://:hunter2@h1:26379/payrouter/zero", "must be a number"),
        ("redis+sentinel://:hunter2@h1:26379/payrouter/0/x", "only SERVICE and DB"),
        ("redis+sentinel://h1:26379/payrouter?socket_connect_timeout=0", "above 0"),
        ("redis+sentinel://h1:26379/payrouter?sentinel_password=hunter2&x=1", "unknown option"),
    ],
)
def test_a_url_that_cannot_work_is_refused_with_the_password_hidden(
    url: str, fragment: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        redis_client(url)
    line = caught.value.line()
    assert line.startswith("PAYROUTER_REDIS_URL "), line
    assert fragment in line, line
    assert "hunter2" not in line, line


@pytest.mark.parametrize(
    "url",
    ["redis+cluster://h1:7000,h2:7001", "redis+sentinel://u:p@h1:26379,h2:26380/payrouter/1"],
)
def test_settings_take_the_cluster_and_sentinel_forms(url: str) -> None:
    assert Settings.from_env({"PAYROUTER_REDIS_URL": url}).redis_url == url


@pytest.mark.parametrize(
    ("url", "verb"),
    [
        ("redis+cluster://:hunter2@", ["serve"]),
        ("redis+cluster://:hunter2@h1:99999", ["merchants", "list"]),
        ("redis+sentinel://:hunter2@127.0.0.1:26379", ["serve"]),
        ("redis+sentinel://:hunter2@127.0.0.1:26379/payrouter/x", ["merchants", "list"]),
    ],
)
def test_the_commands_refuse_a_bad_cluster_or_sentinel_url_in_one_line(
    url: str, verb: list[str], good_routing: Path
) -> None:
    result = payrouter(
        *verb, env={"PAYROUTER_REDIS_URL": url, "PAYROUTER_ROUTING": str(good_routing)}
    )
    one_line_exit_2(result, "PAYROUTER_REDIS_URL")
    assert "hunter2" not in result.stderr + result.stdout


@pytest.fixture(params=["cluster", "sentinel"])
def scheme(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize("verb", [["serve"], ["merchants", "list"]])
def test_serve_gives_up_in_one_line_when_no_node_listens(
    scheme: str, verb: list[str], closed_port: int, good_routing: Path
) -> None:
    url = f"redis+{scheme}://:hunter2@127.0.0.1:{closed_port}"
    url += "/payrouter/0" if scheme == "sentinel" else ""
    env = {"PAYROUTER_REDIS_URL": url, "PAYROUTER_ROUTING": str(good_routing)}
    result = payrouter(*verb, env=env | UNREACHED_DATABASE)
    one_line_exit_2(result, "PAYROUTER_REDIS_URL", f"127.0.0.1:{closed_port}")
    assert "hunter2" not in result.stderr + result.stdout


def test_serve_gives_up_in_one_line_when_no_node_answers(
    scheme: str, silent: int, good_routing: Path
) -> None:
    url = f"redis+{scheme}://127.0.0.1:{silent}"
    url += f"/payrouter/0?{FAST}" if scheme == "sentinel" else f"?{FAST}"
    env = {"PAYROUTER_REDIS_URL": url, "PAYROUTER_ROUTING": str(good_routing)}
    result = payrouter("serve", env=env | UNREACHED_DATABASE)
    one_line_exit_2(result, "PAYROUTER_REDIS_URL", f"127.0.0.1:{silent}")


@pytest.fixture
async def cluster_client(redis_cluster_url: str) -> AsyncIterator[RedisCluster]:
    client = redis_client(redis_cluster_url)
    assert isinstance(client, RedisCluster)
    try:
        yield client
    finally:
        await client.aclose()


async def keys_on_every_primary(client: RedisCluster, primaries: list[int]) -> dict[int, str]:
    """One key per primary: `{port: key}`."""
    await client.initialize()
    found: dict[int, str] = {}
    for n in range(1000):
        key = f"k{n}"
        node = client.get_node_from_key(key)
        assert node is not None
        found.setdefault(int(node.port), key)
        if len(found) == len(primaries):
            break
    assert sorted(found) == primaries
    return found


@pytest.mark.cluster
async def test_a_cluster_client_reaches_every_primary(
    redis_cluster: RedisClusterSetup, cluster_client: RedisCluster
) -> None:
    assert await cluster_client.ping()
    primaries = redis_cluster.primaries()
    keys = await keys_on_every_primary(cluster_client, primaries)
    for port, key in keys.items():
        await cluster_client.set(key, f"on {port}")
    for port, key in keys.items():
        assert await cluster_client.get(key) == f"on {port}"
        assert ask(port, "GET", key) == f"on {port}"


@pytest.mark.cluster
async def test_scripts_are_loaded_on_every_primary_and_run_in_every_slot(
    redis_cluster: RedisClusterSetup, cluster_client: RedisCluster
) -> None:
    sha = hashlib.sha1(INCR.encode()).hexdigest()  # noqa: S324 - Redis names scripts so
    for port in redis_cluster.primaries():
        ask(port, "SCRIPT", "FLUSH")
    await load_scripts(cluster_client, [INCR])
    for port in redis_cluster.primaries():
        assert ask(port, "SCRIPT", "EXISTS", sha) == [1], port
    keys = await keys_on_every_primary(cluster_client, redis_cluster.primaries())
    for key in keys.values():
        assert await cluster_client.evalsha(sha, 1, key, 5) == 5


@pytest.mark.cluster
async def test_open_store_works_on_a_cluster(redis_cluster_url: str) -> None:
    """Start-up's own commands (ping, the secret key check, loading scripts) on a cluster."""
    store = await open_store(redis_cluster_url, FrozenClock(), b"k" * 32)
    try:
        assert await store.ping()
    finally:
        await store.close()


@pytest.mark.cluster
async def test_a_cluster_client_carries_on_after_a_primary_dies(
    redis_cluster: RedisClusterSetup, cluster_client: RedisCluster
) -> None:
    primaries = redis_cluster.primaries()
    keys = await keys_on_every_primary(cluster_client, primaries)
    victim = primaries[0]
    redis_cluster.kill(victim)
    try:
        redis_cluster.wait_healthy()
        assert victim not in redis_cluster.primaries()
        for key in keys.values():
            await retrying(partial(cluster_client.set, key, "after"))
            assert await cluster_client.get(key) == "after"
    finally:
        redis_cluster.restart(victim)
    assert victim in redis_cluster.replicas()


async def retrying(call: Callable[[], Awaitable[object]], attempts: int = 5) -> object:
    """`call()`, again when it fails on a connection to the server that died: by then the
    client has dropped that connection and asks the cluster or the Sentinels afresh."""
    for attempt in range(attempts):
        try:
            return await call()
        except (RedisConnectionError, RedisTimeoutError, ClusterDownError):
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


@pytest.fixture
async def sentinel_client(redis_sentinel_url: str) -> AsyncIterator[Redis]:
    client = redis_client(redis_sentinel_url)
    assert isinstance(client, SentinelRedis)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.mark.cluster
async def test_a_sentinel_client_talks_to_the_primary(
    redis_sentinel: RedisSentinelSetup, sentinel_client: Redis
) -> None:
    assert await sentinel_client.ping()
    await sentinel_client.set("k", "v")
    assert ask(redis_sentinel.primary(), "GET", "k") == "v"
    await load_scripts(sentinel_client, [INCR])
    assert (
        await sentinel_client.evalsha(
            hashlib.sha1(INCR.encode()).hexdigest(),  # noqa: S324 - Redis names scripts so
            1,
            "n",
            2,
        )
        == 2
    )


@pytest.mark.cluster
async def test_open_store_works_on_a_sentinel_primary(redis_sentinel_url: str) -> None:
    store = await open_store(redis_sentinel_url, FrozenClock(), b"k" * 32)
    try:
        assert await store.ping()
    finally:
        await store.close()


@pytest.mark.cluster
async def test_a_sentinel_client_follows_a_failover(
    redis_sentinel: RedisSentinelSetup, sentinel_client: Redis
) -> None:
    await sentinel_client.set("before", "1")
    # Replication is asynchronous: make sure the replica has it before the primary dies.
    assert await sentinel_client.wait(1, 5000) == 1
    old, new = redis_sentinel.kill_primary()
    try:
        await retrying(lambda: sentinel_client.set("after", "2"))
        assert await sentinel_client.mget("before", "after") == ["1", "2"]
        assert ask(new, "GET", "after") == "2"
    finally:
        redis_sentinel.restart(old)
    assert redis_sentinel.replica() == old


@pytest.mark.cluster
async def test_a_service_the_sentinels_do_not_monitor_is_named_in_one_line(
    redis_sentinel: RedisSentinelSetup,
) -> None:
    url = redis_sentinel.url.replace("/payrouter/0", "/orders/0")
    with pytest.raises(ConfigurationError) as caught:
        await open_store(url, FrozenClock(), b"k" * 32)
    line = caught.value.line()
    assert "no Sentinel named a primary for service 'orders'" in line, line
    assert "\n" not in line


def test_the_sentinels_password_is_hidden_too() -> None:
    url = "redis+sentinel://:hunter2@h1:1,h2:2/payrouter?sentinel_password=hunter3"
    assert redacted(url) == "redis+sentinel://:***@h1:1,h2:2/payrouter?sentinel_password=***"
