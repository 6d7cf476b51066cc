"""After Redis restarts, the router's first commands go through: pooled connections the old
server closed are replaced before a command is written to them (`router.store.fresh`).

A real redis-server on its own port, stopped and started again between two rounds of commands
that each hold a pooled connection at once. In one case the restart happens while the event
loop is blocked, so the loop has not yet read the old connections' end of stream when the
commands take them: only the socket poll notices those.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.asyncio import Redis

from router.store import redis_client
from router.store.fresh import FreshConnection, FreshUnixConnection
from tests.conftest import loopback_socket

ROUND = 8
"""Commands in flight at once: each holds its own pooled connection."""


class Server:
    """A redis-server stopped and started synchronously (the caller's event loop stands
    still meanwhile)."""

    def __init__(self, workdir: Path) -> None:
        with loopback_socket() as probe:
            self.port = probe.getsockname()[1]
        self.socket = workdir / "redis.sock"
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        exe = shutil.which("redis-server")
        assert exe is not None, "redis-server is not installed: run scripts/setup"
        argv = [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--appendonly", "no", "--dir", str(self.workdir)]
        argv += ["--unixsocket", str(self.socket)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)  # noqa: S603
        client = redis.Redis(host="127.0.0.1", port=self.port)
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    assert time.monotonic() < deadline, "redis-server did not start"
                    time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    found = Server(tmp_path)
    found.start()
    yield found
    if found.proc is not None and found.proc.poll() is None:
        found.stop()


async def _round(url: str, restart: Server | None = None) -> list[str]:
    """Two rounds of `ROUND` concurrent commands on one client, the server restarted between
    them (while this loop is blocked); what the second round answered."""
    client = redis_client(url)
    try:
        await asyncio.gather(*(client.incr(f"k{i}") for i in range(ROUND)))
        if restart is not None:
            restart.stop()
            restart.start()
        answers = await asyncio.gather(
            *(client.set(f"k{i}", "v") for i in range(ROUND)), return_exceptions=True
        )
        return [repr(answer) for answer in answers]
    finally:
        await client.aclose()


@pytest.mark.parametrize("transport", ["tcp", "unix"])
async def test_commands_after_a_restart_the_loop_did_not_see_go_through(
    server: Server, transport: str
) -> None:
    url = f"redis://127.0.0.1:{server.port}/0" if transport == "tcp" else f"unix://{server.socket}"
    assert await _round(url, restart=server) == ["True"] * ROUND


async def test_commands_after_a_restart_the_loop_saw_go_through(server: Server) -> None:
    url = f"redis://127.0.0.1:{server.port}/0"
    client = redis_client(url)
    try:
        await asyncio.gather(*(client.incr(f"k{i}") for i in range(ROUND)))
        server.stop()
        await asyncio.sleep(0.2)  # the loop reads every old connection's end of stream
        server.start()
        answers = await asyncio.gather(*(client.incr(f"k{i}") for i in range(ROUND)))
    finally:
        await client.aclose()
    assert answers == [1] * ROUND  # the new server has no data: each key counts from 0


def test_single_server_clients_use_the_checked_connections(server: Server) -> None:
    tcp, unix, tls = (
        redis_client(url)
        for url in (
            f"redis://127.0.0.1:{server.port}/0",
            f"unix://{server.socket}",
            f"rediss://127.0.0.1:{server.port}/0",
        )
    )
    assert isinstance(tcp, Redis) and isinstance(unix, Redis) and isinstance(tls, Redis)
    assert tcp.connection_pool.connection_class is FreshConnection
    assert unix.connection_pool.connection_class is FreshUnixConnection
    assert tls.connection_pool.connection_class is redis.asyncio.SSLConnection
    # redis-py skips its own check of pooled connections while these are on.
    assert not tcp.connection_pool.maint_notifications_enabled()  # type: ignore[no-untyped-call]
