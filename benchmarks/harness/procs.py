"""Starting and stopping what the benchmark runs: Redis, simulators, routers, floor.

Every child listens on a free loopback port chosen here and is stopped with SIGTERM (SIGKILL
after a grace period) by the `Children` that started it; their stderr goes to log files in
the run's work directory, named in the report when something fails to start.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from benchmarks.harness.stats import cpu_seconds
from benchmarks.harness.topologies import RedisClusterSetup, TopologyError, start_cluster

START_TIMEOUT_S = 60.0


class StartError(RuntimeError):
    """A child did not come up; the message names its log file."""


def free_port() -> int:
    """A loopback port free right now (the child binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def process_cpu_s(pid: int) -> float:
    """User plus system CPU seconds a process has used, from `/proc/<pid>/stat`."""
    return cpu_seconds(Path(f"/proc/{pid}/stat").read_text())


def own_cpu_s() -> float:
    """This process's user plus system CPU seconds."""
    times = os.times()
    return times.user + times.system


def payrouter_argv() -> list[str]:
    """How to run `payrouter`: the console script beside this Python, else `-m router`."""
    script = Path(sys.executable).with_name("payrouter")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "router"]


@dataclass
class Child:
    name: str
    proc: asyncio.subprocess.Process
    log: Path
    url: str = ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def failed(self, why: str) -> StartError:
        tail = ""
        with contextlib.suppress(OSError):
            tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-15:])
        return StartError(f"{self.name} {why} (log {self.log}):\n{tail}")


def _log_file(path: Path) -> int:
    """A descriptor for a child's stderr (the child keeps its own copy)."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)


@dataclass
class Children:
    """The children one run started; `stop_all` ends them, newest first."""

    workdir: Path
    started: list[Child] = field(default_factory=list)
    blocking_stops: list[Callable[[], None]] = field(default_factory=list)
    """How to stop what was started by blocking code (a Redis Cluster): run in a thread."""

    async def spawn(
        self, name: str, argv: list[str], env: Mapping[str, str] | None = None, pipe: bool = False
    ) -> Child:
        log = self.workdir / f"{name}.log"
        sink = _log_file(log)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE if pipe else asyncio.subprocess.DEVNULL,
                stderr=sink,
                env=dict(env) if env is not None else None,
            )
        finally:
            os.close(sink)
        child = Child(name, proc, log)
        self.started.append(child)
        return child

    async def stop_all(self, grace_s: float = 10.0) -> None:
        for child in reversed(self.started):
            await stop(child, grace_s)
        self.started.clear()
        for stop_blocking in reversed(self.blocking_stops):
            await asyncio.to_thread(stop_blocking)
        self.blocking_stops.clear()


async def stop(child: Child, grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `grace_s`."""
    proc = child.proc
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), timeout=grace_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


async def wait_ready_line(child: Child, timeout_s: float = START_TIMEOUT_S) -> None:
    """Wait for the child to print `ready` on stdout."""
    assert child.proc.stdout is not None
    try:
        line = await asyncio.wait_for(child.proc.stdout.readline(), timeout=timeout_s)
    except TimeoutError:
        raise child.failed(f"did not start within {timeout_s:.0f} s") from None
    if line.strip() != b"ready":
        raise child.failed("exited before it was ready")


async def wait_http(
    child: Child, url: str, session: aiohttp.ClientSession, timeout_s: float = START_TIMEOUT_S
) -> None:
    """Poll `url` until it answers 200; fail early if the child exits."""
    deadline = time.monotonic() + timeout_s
    while True:
        if child.proc.returncode is not None:
            raise child.failed(f"exited with status {child.proc.returncode}")
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                if resp.status == 200:
                    return
        if time.monotonic() > deadline:
            raise child.failed(f"did not answer {url} within {timeout_s:.0f} s")
        await asyncio.sleep(0.05)


async def start_redis(children: Children) -> tuple[Child, str]:
    """A private redis-server on a free loopback port, without persistence."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise StartError("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    folder = children.workdir / "redis"
    folder.mkdir(exist_ok=True)
    argv = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    argv += ["--appendonly", "no", "--dir", str(folder)]
    child = await children.spawn("redis", argv)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if child.proc.returncode is not None:
            raise child.failed(f"exited with status {child.proc.returncode}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise child.failed("did not listen in time") from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        child.url = url
        return child, url


async def start_redis_cluster(children: Children) -> tuple[RedisClusterSetup, str]:
    """A private 3-primary, 3-replica Redis Cluster on loopback (`topologies.start_cluster`,
    the launcher the tests use), stopped with the children."""
    root = children.workdir / "redis-cluster"
    root.mkdir(exist_ok=True)
    try:
        cluster = await asyncio.to_thread(start_cluster, root)
    except (TopologyError, subprocess.SubprocessError, OSError) as exc:
        raise StartError(f"redis cluster did not start (logs in {root}): {exc}") from None
    children.blocking_stops.append(cluster.stop)
    return cluster, cluster.url


async def start_simulators(
    children: Children, sandbox_dir: Path, ports: Mapping[str, int], time_factor: float
) -> Child:
    """The three simulators in one child process (`benchmarks.harness.simproc`)."""
    argv = [sys.executable, "-m", "benchmarks.harness.simproc", "--sandbox-dir", str(sandbox_dir)]
    argv += ["--time-factor", str(time_factor)]
    for name, port in ports.items():
        argv += ["--port", f"{name}={port}"]
    child = await children.spawn("simulators", argv, pipe=True)
    await wait_ready_line(child)
    return child


async def start_floor(
    children: Children, redis_url: str, routing: Path, account: str, port: int
) -> Child:
    argv = [sys.executable, "-m", "benchmarks.harness.floor", "--port", str(port)]
    argv += ["--redis-url", redis_url, "--routing", str(routing), "--account", account]
    child = await children.spawn("floor", argv, pipe=True)
    await wait_ready_line(child)
    child.url = f"http://127.0.0.1:{port}"
    return child


def router_env(
    base: Mapping[str, str], redis_url: str, routing: Path, port: int, secret_key: str
) -> dict[str, str]:
    """The environment of one `payrouter serve` child; no PAYROUTER_* is inherited."""
    env = {k: v for k, v in base.items() if not k.startswith("PAYROUTER_")}
    url = f"http://127.0.0.1:{port}"
    env |= {
        "PAYROUTER_REDIS_URL": redis_url,
        "PAYROUTER_ROUTING": str(routing),
        "PAYROUTER_HOST": "127.0.0.1",
        "PAYROUTER_PORT": str(port),
        "PAYROUTER_PUBLIC_URL": url,
        "PAYROUTER_SECRET_KEY": secret_key,
        "PAYROUTER_WEBHOOK_SCHEDULE": "0s,1s,1s,2s",
        # Pending QR payments are never paid in the create scenarios: without this, the
        # workers would re-query them all 30 s later, in the middle of another scenario.
        "PAYROUTER_REQUERY_AFTER": "3600",
    }
    return env


async def start_router(
    children: Children, index: int, env: Mapping[str, str], session: aiohttp.ClientSession
) -> Child:
    """One `payrouter serve` child, ready once `/readyz` answers 200."""
    child = await children.spawn(f"router-{index}", [*payrouter_argv(), "serve"], env=env)
    child.url = env["PAYROUTER_PUBLIC_URL"]
    await wait_http(child, child.url + "/readyz", session)
    return child
