"""A Redis address that never answers ends start-up with one line and exit code 2, within the
connect and reply timeouts (the URL's, or the defaults `open_store` sets); the defaults leave
the router's blocking reads working.

Real processes against loopback listeners that accept and then say nothing, or trickle bytes
that never make an answer: before the timeouts, redis-py versions without default timeouts
(5.x) waited on both forever.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from router.clock import FrozenClock
from router.settings import ConfigurationError
from router.store import (
    CONNECT_TIMEOUT_S,
    REPLY_TIMEOUT_S,
    open_store,
    redis_client,
    startup_deadline,
)
from tests.router.test_cli import ROOT, UNREACHED_DATABASE, one_line_exit_2, payrouter
from tests.router.test_cli import good_routing as good_routing  # a fixture, used by name

FAST = "socket_connect_timeout=1&socket_timeout=1"
"""The least the URL may ask for: a start-up deadline of 2 s."""


@pytest.fixture
def silent() -> Iterator[int]:
    """A loopback port whose listener accepts connections (the kernel completes them into its
    backlog) and never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock.getsockname()[1]


@pytest.fixture
async def trickling() -> AsyncIterator[int]:
    """A loopback port whose listener sends the start of an answer, then a byte at a time,
    never ending it: no single read ever waits long."""

    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"+")
        try:
            while True:
                await asyncio.sleep(0.2)
                writer.write(b"O")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(talk, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def payrouter_async(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """`python -m router ARGS` while this loop keeps serving the listener."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "router",
        *args,
        env={"PATH": "/usr/bin:/bin"} | env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), timeout=45)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


def test_merchant_commands_give_up_on_a_silent_redis_with_the_default_timeouts(
    silent: int,
) -> None:
    result = payrouter(
        "merchants", "list", env={"PAYROUTER_REDIS_URL": f"redis://127.0.0.1:{silent}/0"}
    )
    one_line_exit_2(result, "PAYROUTER_REDIS_URL", f"127.0.0.1:{silent}")


@pytest.mark.parametrize("verb", [["serve"], ["routes", "explain", "--method", "qr"]])
def test_other_verbs_give_up_on_a_silent_redis(
    silent: int, verb: list[str], good_routing: Path
) -> None:
    url = f"redis://127.0.0.1:{silent}/0?{FAST}"
    env = {"PAYROUTER_REDIS_URL": url, "PAYROUTER_ROUTING": str(good_routing)}
    result = payrouter(*verb, env=env | UNREACHED_DATABASE)
    one_line_exit_2(result, "PAYROUTER_REDIS_URL", f"127.0.0.1:{silent}")


async def test_a_redis_that_trickles_bytes_meets_the_start_up_deadline(trickling: int) -> None:
    url = f"redis://127.0.0.1:{trickling}/0?{FAST}"
    code, stderr = await payrouter_async("merchants", "list", env={"PAYROUTER_REDIS_URL": url})
    assert "Traceback" not in stderr, stderr
    assert code == 2, stderr
    [line] = stderr.strip().splitlines()
    assert line.startswith("Error: PAYROUTER_REDIS_URL") and f":{trickling}" in line, line


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("socket_timeout=0.1", "socket_timeout must be a number of seconds at least 1"),
        ("socket_timeout=nan", "socket_timeout"),
        ("socket_timeout=inf", "socket_timeout"),
        ("socket_connect_timeout=0", "socket_connect_timeout must be a number of seconds above 0"),
        ("socket_connect_timeout=-1", "socket_connect_timeout"),
    ],
)
def test_timeouts_that_cannot_work_are_refused(silent: int, query: str, fragment: str) -> None:
    url = f"redis://127.0.0.1:{silent}/0?{query}"
    one_line_exit_2(payrouter("merchants", "list", env={"PAYROUTER_REDIS_URL": url}), fragment)


def test_defaults_apply_unless_the_url_says() -> None:
    plain = redis_client("redis://127.0.0.1:6379/0")
    assert isinstance(plain, Redis)
    options = plain.connection_pool.connection_kwargs
    assert (options["socket_connect_timeout"], options["socket_timeout"]) == (
        CONNECT_TIMEOUT_S,
        REPLY_TIMEOUT_S,
    )
    assert startup_deadline(plain) == CONNECT_TIMEOUT_S + REPLY_TIMEOUT_S
    told = redis_client("unix:///run/redis.sock?socket_connect_timeout=2&socket_timeout=30")
    assert startup_deadline(told) == 32.0
    with pytest.raises(ConfigurationError, match="socket_timeout"):
        redis_client("redis://127.0.0.1:6379/0?socket_timeout=0.5")


async def test_blocking_reads_work_under_the_least_reply_timeout(redis_url: str) -> None:
    """The dispatcher blocks on its outbox streams for 200 ms at a time: under a reply
    timeout of 1 s (the least accepted) that wait ends on its own, empty, again and again."""
    store = await open_store(f"{redis_url}?socket_timeout=1", FrozenClock())
    try:
        await store.events.ensure_groups()
        for _ in range(3):
            assert await store.events.read_new("c1", 10) == []
    finally:
        await store.close()
