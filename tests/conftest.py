"""Fixtures every suite shares: a real redis-server, a real Redis Cluster and Sentinel set-up
(`benchmarks.harness.topologies`), a real PostgreSQL (`benchmarks.harness.postgres`), and
serving apps on loopback sockets."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
from aiohttp import web

from benchmarks.harness.postgres import PostgresError, PostgresServer, start_postgres
from benchmarks.harness.topologies import (
    RedisClusterSetup,
    RedisSentinelSetup,
    TopologyError,
    start_cluster,
    start_sentinel,
)
from router.logs import Runner


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server on a free loopback port, for the whole session."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed: run scripts/setup")
    workdir = tmp_path_factory.mktemp("redis")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(  # noqa: S603 - a fixed argv, our own test server
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
    client.close()
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--redis",
        choices=("single", "cluster", "sentinel"),
        default="single",
        help="What `redis_url` points at: one server (default), a Redis Cluster, or a "
        "Sentinel-managed primary. The suites that talk to Redis run unchanged on each.",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked `every_topology` that use `redis_url` run on one server and on a Redis
    Cluster in a default run (with `--redis` given, on that topology only)."""
    if (
        "redis_topology" in metafunc.fixturenames
        and metafunc.definition.get_closest_marker("every_topology") is not None
        and metafunc.config.getoption("--redis") == "single"
    ):
        metafunc.parametrize(
            "redis_topology",
            ["single", pytest.param("cluster", marks=pytest.mark.cluster)],
            indirect=True,
        )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give each test a node id of its own.

    schemathesis names its per-operation tests (`test_x[POST /v1/payments]`) but leaves
    them the function's node id; pytest-xdist schedules and reports by node id, so it
    would run one of them and drop the rest.
    """
    seen: dict[str, int] = {}
    for item in items:
        seen[item.nodeid] = seen.get(item.nodeid, 0) + 1
    for item in items:
        if seen[item.nodeid] > 1 and "[" in item.name:
            # pytest keeps a node's id as a parsed NodeId; building it from the string
            # form is the one way in that does not depend on how it is constructed.
            item._id = type(item._id).parse(f"{item.nodeid.rpartition('::')[0]}::{item.name}")


@pytest.fixture
def redis_topology(request: pytest.FixtureRequest) -> str:
    """Which Redis `redis_url` points at: the test's parameter, else `--redis`."""
    return str(getattr(request, "param", None) or request.config.getoption("--redis"))


@pytest.fixture
def redis_url(request: pytest.FixtureRequest, redis_topology: str) -> str:
    """The session's Redis (`--redis`: one server, a Cluster or a Sentinel primary; tests
    marked `every_topology` run on one server and on a Cluster), emptied for this test."""
    topology = redis_topology
    if topology == "cluster":
        return str(request.getfixturevalue("redis_cluster_url"))
    if topology == "sentinel":
        return str(request.getfixturevalue("redis_sentinel_url"))
    server = str(request.getfixturevalue("redis_server"))
    client = redis.Redis.from_url(server)
    client.flushall()
    client.close()
    return server


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterSetup]:
    """A private Redis Cluster for the whole session: 3 primaries, 3 replicas on loopback.

    `.url` is its `redis+cluster://` URL; `.primaries()` / `.replicas()` the live roles;
    `.kill(port)` SIGKILLs a node and `.restart(port)` brings it back (as a replica)."""
    try:
        setup = start_cluster(tmp_path_factory.mktemp("redis-cluster"))
    except TopologyError as exc:
        pytest.fail(str(exc))
    try:
        yield setup
    finally:
        setup.stop()


@pytest.fixture
def redis_cluster_url(redis_cluster: RedisClusterSetup) -> str:
    """The session's cluster, whole again and emptied for this test."""
    redis_cluster.wait_healthy()
    redis_cluster.flush()
    return redis_cluster.url


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisSentinelSetup]:
    """A private Sentinel set-up for the whole session: a primary, its replica and three
    Sentinels (quorum 2) watching service `payrouter`.

    `.url` is its `redis+sentinel://.../payrouter/0` URL; `.kill_primary()` SIGKILLs the
    primary and waits until the Sentinels name the replica; `.restart(port)` brings a killed
    server back as a replica."""
    try:
        setup = start_sentinel(tmp_path_factory.mktemp("redis-sentinel"))
    except TopologyError as exc:
        pytest.fail(str(exc))
    try:
        yield setup
    finally:
        setup.stop()


@pytest.fixture
def redis_sentinel_url(redis_sentinel: RedisSentinelSetup) -> str:
    """The session's Sentinel-managed primary, emptied for this test."""
    redis_sentinel.flush()
    return redis_sentinel.url


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A private PostgreSQL server for the whole session (initdb in a temporary folder, a
    free loopback port, run as the `postgres` user when we are root)."""
    try:
        server = start_postgres()
    except PostgresError as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        server.stop()


MIGRATED_TEMPLATE = "payrouter_migrated"


@pytest.fixture(scope="session")
def postgres_template(postgres_server: PostgresServer) -> str:
    """A database migrated to the newest schema once, copied by `postgres_migrated_url`."""
    from router.record import migrate, open_record

    url = postgres_server.create_database(MIGRATED_TEMPLATE)

    async def run() -> None:
        record = await open_record(url)
        try:
            await migrate(record.engine)
        finally:
            await record.close()

    # In a thread of its own: asyncio.run must not replace the test's event loop.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()
    return MIGRATED_TEMPLATE


_DATABASES = itertools.count(1)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A new, empty database on the session's PostgreSQL (PAYROUTER_DATABASE_URL form)."""
    name = f"test_{next(_DATABASES)}"
    yield postgres_server.create_database(name)
    postgres_server.drop_database(name)


@pytest.fixture
def postgres_migrated_url(postgres_server: PostgresServer, postgres_template: str) -> Iterator[str]:
    """A new database with the newest schema, copied from the session's template."""
    name = f"test_{next(_DATABASES)}"
    yield postgres_server.create_database(name, template=postgres_template)
    postgres_server.drop_database(name)


def loopback_socket() -> socket.socket:
    """A bound loopback socket: its port is known before the server starts, with no race."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def url_of(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


async def serve(app: web.Application, sock: socket.socket) -> web.AppRunner:
    """Serve `app` on `sock` the way `payrouter serve` does (`router.logs.Runner`)."""
    runner = Runner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return runner


@pytest.fixture
async def serving() -> AsyncIterator[list[web.AppRunner]]:
    """Collects runners started by a test and stops them afterwards, newest first."""
    runners: list[web.AppRunner] = []
    yield runners
    for runner in reversed(runners):
        await runner.cleanup()


FIXTURES = Path(__file__).parent / "fixtures"
