"""Real Redis topologies on loopback: a 3-primary, 3-replica Redis Cluster and a Sentinel
set-up (primary, replica, three Sentinels), each from Debian's `redis-server`.

Plain, blocking functions and classes, shared by the tests (`tests/conftest.py` turns them
into fixtures) and by `payrouter bench --redis cluster` (which runs them in a thread). Every
process runs in its own folder with persistence off, and `stop()` ends them all.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

import redis

HOST = "127.0.0.1"
START_TIMEOUT_S = 30.0
"""The longest a topology may take to come up, or to settle after a node was killed."""
SERVICE = "payrouter"
"""The Sentinel service name the Sentinel set-up monitors."""


class TopologyError(RuntimeError):
    """A topology did not come up, or did not settle, in time."""


def executable(name: str) -> str:
    """The path of `name`, or a `TopologyError` saying to run scripts/setup."""
    path = shutil.which(name)
    if path is None:
        raise TopologyError(f"{name} is not installed: run scripts/setup")
    return path


def free_port(*, cluster_bus: bool = False) -> int:
    """A loopback port nothing listens on; with `cluster_bus`, port + 10000 is free as well
    (a cluster node listens on both)."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind((HOST, 0))
            port: int = probe.getsockname()[1]
            if not cluster_bus:
                return port
            if port + 10000 > 65535:
                continue
            with socket.socket() as bus:
                try:
                    bus.bind((HOST, port + 10000))
                except OSError:
                    continue
                return port
    raise TopologyError("no free loopback port pair for a cluster node")


def wait_until(what: str, ready: Callable[[], bool], timeout: float = START_TIMEOUT_S) -> None:
    """Ask `ready` until it says yes; connection errors count as not yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready():
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise TopologyError(f"{what}: not ready within {timeout:g} s")
        # Nothing to subscribe to while processes start and gossip: ask again shortly.
        time.sleep(0.05)


def answers(port: int) -> bool:
    """The server on `port` is up."""
    return ask(port, "PING") == "PONG"


def ask(port: int, *command: str) -> object:
    """One command to the server on `port`, on a fresh connection, answered as the server
    sends it (redis-py's parsing of INFO, CLUSTER NODES and the like left out)."""
    with redis.Redis(host=HOST, port=port, decode_responses=True, socket_timeout=5) as client:
        client.response_callbacks.clear()
        return client.execute_command(*command)


@dataclass
class Node:
    """One redis-server (or Sentinel) process and how to start it again."""

    port: int
    argv: list[str]
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.workdir / "log.txt").open("ab")
        with log:
            self.proc = subprocess.Popen(  # noqa: S603 - a fixed argv, our own test server
                self.argv, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT
            )

    def kill(self) -> None:
        """SIGKILL: no shutdown, no goodbye to the cluster or the Sentinels."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    @property
    def pid(self) -> int:
        """The process id of the running (or last started) process."""
        if self.proc is None:
            raise TopologyError(f"node {self.port} was never started")
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def server_argv(port: int, workdir: Path, *extra: str) -> list[str]:
    return [
        executable("redis-server"),
        "--port",
        str(port),
        "--bind",
        HOST,
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
        # A replica's first sync starts at once instead of after the default 5 s pause.
        "--repl-diskless-sync-delay",
        "0",
        *extra,
    ]


def stop_all(nodes: Iterable[Node]) -> None:
    for node in nodes:
        node.stop()


@dataclass
class RedisClusterSetup:
    """A running cluster: 3 primaries, each with one replica."""

    nodes: dict[int, Node]
    url: str = field(init=False)

    def __post_init__(self) -> None:
        self.url = "redis+cluster://" + ",".join(f"{HOST}:{port}" for port in self.nodes)

    @property
    def ports(self) -> list[int]:
        """Every node's port, primaries and replicas."""
        return list(self.nodes)

    def view(self, port: int) -> dict[int, str]:
        """`port: flags` of every node the node on `port` knows (`CLUSTER NODES`)."""
        answer = ask(port, "CLUSTER", "NODES")
        assert isinstance(answer, str)
        view: dict[int, str] = {}
        for line in answer.splitlines():
            fields = line.split()
            view[int(fields[1].split("@")[0].rsplit(":", 1)[1])] = fields[2]
        return view

    def roles(self) -> dict[int, str]:
        """`port: "master" | "slave"` of every live node, as the cluster sees it now."""
        port = next(port for port, node in self.nodes.items() if node.alive)
        return {
            node: "master" if "master" in flags.split(",") else "slave"
            for node, flags in self.view(port).items()
            if self.nodes[node].alive and "fail" not in flags.split(",")
        }

    def primaries(self) -> list[int]:
        """Ports of the live primaries."""
        return sorted(port for port, role in self.roles().items() if role == "master")

    def replicas(self) -> list[int]:
        """Ports of the live replicas."""
        return sorted(port for port, role in self.roles().items() if role == "slave")

    def healthy(self) -> bool:
        """Every live node says `cluster_state:ok` and sees every other live node as
        working, there are 3 primaries (a node back from the dead has become a replica),
        and every replica has its link to its primary up."""
        alive = {port for port, node in self.nodes.items() if node.alive}
        for port in alive:
            if "cluster_state:ok" not in str(ask(port, "CLUSTER", "INFO")):
                return False
            view = self.view(port)
            if any(
                {"fail", "fail?", "handshake", "noaddr"} & set(view.get(other, "noaddr").split(","))
                for other in alive
            ):
                return False
        roles = self.roles()
        if sorted(role for role in roles.values()).count("master") != 3 or set(roles) != alive:
            return False
        return all(
            "master_link_status:up" in str(ask(port, "INFO", "replication"))
            for port, role in roles.items()
            if role == "slave"
        )

    def wait_healthy(self) -> None:
        wait_until("redis cluster", self.healthy)

    def flush(self) -> None:
        """FLUSHALL on every primary: an empty cluster for the next test."""
        for port in self.primaries():
            ask(port, "FLUSHALL")

    def kill(self, port: int) -> None:
        """SIGKILL the node on `port`; its replica takes over once the cluster notices."""
        self.nodes[port].kill()

    def restart(self, port: int) -> None:
        """Start a killed node again (it rejoins from its nodes.conf, as a replica when its
        slots moved meanwhile) and wait until the cluster is whole."""
        self.nodes[port].start()
        self.wait_healthy()

    def stop(self) -> None:
        stop_all(self.nodes.values())


T = TypeVar("T")
START_ATTEMPTS = 3
"""A port found free can be taken by another process before the server binds it (a busy
machine, tests in parallel): a start whose server exits at once is tried again elsewhere."""


def _started(node: Node) -> bool:
    """The node answers; a `TopologyError` (not worth waiting for) if its process exited."""
    if not node.alive:
        raise TopologyError(f"redis on port {node.port} exited at start (port taken?)")
    return answers(node.port)


def _attempts(start: Callable[[Path, int], T], root: Path) -> T:
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            return start(root, attempt)
        except TopologyError:
            if attempt == START_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def start_cluster(root: Path) -> RedisClusterSetup:
    """Six cluster nodes on free loopback ports, joined by `redis-cli --cluster create`."""
    return _attempts(_start_cluster, root)


def _start_cluster(root: Path, attempt: int) -> RedisClusterSetup:
    nodes: dict[int, Node] = {}
    try:
        for _ in range(6):
            port = free_port(cluster_bus=True)
            workdir = root / f"try{attempt}-node{port}"
            workdir.mkdir()
            argv = server_argv(
                port,
                workdir,
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(workdir / "nodes.conf"),
                # Short, so that a killed primary's replica takes over within seconds.
                "--cluster-node-timeout",
                "1000",
            )
            nodes[port] = Node(port, argv, workdir)
            nodes[port].start()
        for port, node in nodes.items():
            wait_until(f"cluster node {port}", partial(_started, node))
        subprocess.run(  # noqa: S603 - a fixed argv
            [
                executable("redis-cli"),
                "--cluster",
                "create",
                *(f"{HOST}:{port}" for port in nodes),
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=START_TIMEOUT_S,
        )
        setup = RedisClusterSetup(nodes)
        setup.wait_healthy()
    except BaseException:
        stop_all(nodes.values())
        raise
    return setup


@dataclass
class RedisSentinelSetup:
    """A running Sentinel set-up: primary, replica, three Sentinels watching `SERVICE`."""

    servers: dict[int, Node]
    sentinels: dict[int, Node]
    url: str = field(init=False)

    def __post_init__(self) -> None:
        hosts = ",".join(f"{HOST}:{port}" for port in self.sentinels)
        self.url = f"redis+sentinel://{hosts}/{SERVICE}/0"

    def primary(self) -> int:
        """The port the first live Sentinel names as the primary."""
        port = next(port for port, node in self.sentinels.items() if node.alive)
        answer = ask(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
        assert isinstance(answer, list)
        return int(answer[1])

    def replica(self) -> int:
        """The port of the server that is not the primary."""
        primary = self.primary()
        return next(port for port in self.servers if port != primary)

    def agreed(self, primary: int) -> bool:
        """Every Sentinel names `primary`, knows the other two Sentinels, and sees a replica
        with its link up, so that a failover can happen."""
        for port in self.sentinels:
            answer = ask(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
            if not isinstance(answer, list) or int(answer[1]) != primary:
                return False
            if len(ask_list(port, "SENTINEL", "SENTINELS", SERVICE)) != 2:
                return False
            replicas = ask_list(port, "SENTINEL", "REPLICAS", SERVICE)
            if not any(
                "s_down" not in str(replica) and "disconnected" not in str(replica)
                for replica in replicas
            ):
                return False
        replica = next(port for port in self.servers if port != primary)
        return "master_link_status:up" in str(ask(replica, "INFO", "replication"))

    def flush(self) -> None:
        """FLUSHALL on the current primary (its replica follows)."""
        ask(self.primary(), "FLUSHALL")

    def kill_primary(self) -> tuple[int, int]:
        """SIGKILL the primary and wait until every Sentinel names the replica instead;
        returns (old primary, new primary)."""
        old = self.primary()
        new = self.replica()
        self.servers[old].kill()
        wait_until(
            "sentinel failover",
            lambda: (
                all(
                    ask_list(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)[1] == str(new)
                    for port in self.sentinels
                )
                and "role:master" in str(ask(new, "INFO", "replication"))
            ),
        )
        return old, new

    def restart(self, port: int) -> None:
        """Start a killed server again, as a replica of the current primary, and wait until
        the Sentinels see it so (left to them, the conversion takes several seconds more)."""
        primary = self.primary()
        node = self.servers[port]
        node.argv = [*server_argv(port, node.workdir), "--replicaof", HOST, str(primary)]
        node.start()
        wait_until("sentinel set-up", lambda: self.agreed(primary))

    def stop(self) -> None:
        stop_all([*self.sentinels.values(), *self.servers.values()])


def ask_list(port: int, *command: str) -> list[object]:
    answer = ask(port, *command)
    assert isinstance(answer, list), answer
    return answer


def sentinel_argv(port: int, workdir: Path, primary: int) -> list[str]:
    """`redis-sentinel CONFIG`, or `redis-server CONFIG --sentinel` where Debian's
    redis-sentinel package is not installed (the same program in Sentinel mode)."""
    config = workdir / "sentinel.conf"
    config.write_text(
        f"port {port}\n"
        f"bind {HOST}\n"
        f'dir "{workdir}"\n'
        f"sentinel monitor {SERVICE} {HOST} {primary} 2\n"
        f"sentinel down-after-milliseconds {SERVICE} 1000\n"
        f"sentinel failover-timeout {SERVICE} 3000\n"
        f"sentinel parallel-syncs {SERVICE} 1\n",
        encoding="utf-8",
    )
    sentinel = shutil.which("redis-sentinel")
    if sentinel is not None:
        return [sentinel, str(config)]
    return [executable("redis-server"), str(config), "--sentinel"]


def start_sentinel(root: Path) -> RedisSentinelSetup:
    """A primary, a replica of it, and three Sentinels with quorum 2."""
    return _attempts(_start_sentinel, root)


def _start_sentinel(root: Path, attempt: int) -> RedisSentinelSetup:
    servers: dict[int, Node] = {}
    sentinels: dict[int, Node] = {}
    try:
        primary = free_port()
        for port, extra in ((primary, ()), (free_port(), ("--replicaof", HOST, str(primary)))):
            workdir = root / f"try{attempt}-server{port}"
            workdir.mkdir()
            servers[port] = Node(port, server_argv(port, workdir, *extra), workdir)
            servers[port].start()
        for node in servers.values():
            wait_until(f"sentinel server {node.port}", partial(_started, node))
        replica = next(port for port in servers if port != primary)
        # The Sentinels learn of replicas from the primary's INFO, asked every 10 s: the
        # replica must be attached before they first ask.
        wait_until(
            "sentinel replica",
            lambda: "master_link_status:up" in str(ask(replica, "INFO", "replication")),
        )
        for _ in range(3):
            port = free_port()
            workdir = root / f"try{attempt}-sentinel{port}"
            workdir.mkdir()
            sentinels[port] = Node(port, sentinel_argv(port, workdir, primary), workdir)
            sentinels[port].start()
        setup = RedisSentinelSetup(servers, sentinels)
        wait_until("sentinel set-up", lambda: setup.agreed(primary))
    except BaseException:
        stop_all([*sentinels.values(), *servers.values()])
        raise
    return setup
