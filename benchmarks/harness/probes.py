"""Reading counters while load runs: processes' CPU, and Redis's own statistics.

Redis is asked over raw RESP connections (one per primary) opened before the measurement, so
the harness adds exactly one command (`INFO`) and one socket read per node and snapshot, and
none of a client library's connection handshake (`HELLO`, `CLIENT SETINFO`), to what it
measures. `MONITOR` runs the same way, on connections of its own, only during the spread
measurement.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

from benchmarks.harness.procs import StartError, own_cpu_s, process_cpu_s
from benchmarks.harness.spread import SpreadTally, parse_cluster_primaries, parse_monitor_line
from benchmarks.harness.stats import (
    RedisSnapshot,
    add_snapshots,
    busy_share,
    host_jiffies,
    snapshot,
)
from router.store import CONNECT_TIMEOUT_S, REPLY_TIMEOUT_S
from router.store.connect import CLUSTER_SCHEME

MONITOR_LINE_LIMIT = 2**24
MONITOR_DRAIN_S = 60.0
"""The longest the feeds may take to reach the end marker after the load stopped."""


@dataclass(frozen=True)
class RedisAddress:
    """One Redis server to open raw connections to."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"


def addresses_of(url: str) -> tuple[list[RedisAddress], bool]:
    """The servers a `redis://` URL (one) or `redis+cluster://` URL (its seed nodes) names,
    and whether it is a cluster; `ValueError` for a URL that cannot be read."""
    parts = urlsplit(url)
    cluster = parts.scheme.lower() == CLUSTER_SCHEME
    userinfo, _, hosts = parts.netloc.rpartition("@")
    user, colon, secret = userinfo.partition(":")
    username, password = unquote(user) or None, unquote(secret) if colon else None
    found = []
    for item in hosts.split(",") if cluster else [hosts]:
        node = urlsplit(f"//{item}")
        found.append(RedisAddress(node.hostname or "", 6379 if node.port is None else node.port))
    return [replace(a, username=username, password=password) for a in found], cluster


async def _open(
    address: RedisAddress, limit: int = 2**16, ping: bool = True
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw connection, authenticated; `StartError` naming the address if that cannot be
    done within `CONNECT_TIMEOUT_S` + `REPLY_TIMEOUT_S`."""
    writer = None
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S + REPLY_TIMEOUT_S):
            reader, writer = await asyncio.open_connection(address.host, address.port, limit=limit)
            if address.password:
                await _command(
                    reader, writer, "AUTH", address.username or "default", address.password
                )
            if ping:
                await _command(reader, writer, "PING")
    except (OSError, EOFError, ValueError, RuntimeError) as exc:
        # TimeoutError is an OSError; the others: something that is not Redis answered, or
        # Redis refused AUTH.
        if writer is not None:
            writer.close()
        reason = str(exc) or type(exc).__name__
        raise StartError(f"--redis-url: cannot use Redis at {address.name}: {reason}") from None
    return reader, writer


def _frame(*args: str) -> bytes:
    encoded = [a.encode() for a in args]
    frame = b"*%d\r\n" % len(encoded)
    for arg in encoded:
        frame += b"$%d\r\n%s\r\n" % (len(arg), arg)
    return frame


async def _command(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *args: str) -> str:
    """Send one command; return a bulk or simple string answer as text."""
    writer.write(_frame(*args))
    await writer.drain()
    head = await reader.readline()
    if head.startswith(b"$"):
        size = int(head[1:])
        body = await reader.readexactly(size + 2)
        return body[:-2].decode()
    if head.startswith(b"+"):
        return head[1:].strip().decode()
    raise RuntimeError(f"redis answered {head.strip().decode(errors='replace')}")


class RedisInfo:
    """One connection to one server that sends `INFO ...` and reads the bulk-string answer."""

    def __init__(
        self, address: RedisAddress, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.address = address
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, address: RedisAddress) -> RedisInfo:
        return cls(address, *await _open(address))

    async def command(self, *args: str) -> str:
        """Send one command; return a bulk or simple string answer as text."""
        return await _command(self._reader, self._writer, *args)

    async def snapshot(self) -> RedisSnapshot:
        return snapshot(await self.command("INFO", "commandstats", "stats"))

    async def close(self) -> None:
        self._writer.close()
        await self._writer.wait_closed()


class RedisCounters:
    """Redis's own statistics, summed over every primary: one server, or each primary of a
    cluster (found with `CLUSTER NODES` from the first seed node)."""

    def __init__(self, nodes: list[RedisInfo]) -> None:
        self.nodes = nodes

    @classmethod
    async def connect(cls, url: str) -> RedisCounters:
        try:
            seeds, cluster = addresses_of(url)
        except ValueError as exc:
            raise StartError(f"--redis-url: {exc}") from None
        first = await RedisInfo.open(seeds[0])
        if not cluster:
            return cls([first])
        try:
            primaries = parse_cluster_primaries(await first.command("CLUSTER", "NODES"))
        finally:
            await first.close()
        seed = seeds[0]
        return cls(
            [await RedisInfo.open(replace(seed, host=host, port=port)) for host, port in primaries]
        )

    @property
    def addresses(self) -> list[RedisAddress]:
        return [node.address for node in self.nodes]

    async def snapshot(self) -> RedisSnapshot:
        """Every node's counters added up (one INFO, one socket read on each)."""
        shots = await asyncio.gather(*(node.snapshot() for node in self.nodes))
        return add_snapshots(shots)

    async def version(self) -> str:
        for line in (await self.nodes[0].command("INFO", "server")).splitlines():
            if line.startswith("redis_version:"):
                return line.partition(":")[2].strip()
        return "unknown"

    async def close(self) -> None:
        for node in self.nodes:
            await node.close()


class MonitorTap:
    """`MONITOR` on every primary, each on its own connection, tallied into a `SpreadTally`.

    `stop()` sends a marker `ECHO` to each node on another connection and reads each feed up
    to it, so every command the node ran before the marker is counted, and no sleep is
    needed to wait for the feed to catch up.
    """

    def __init__(self, addresses: list[RedisAddress]) -> None:
        self.addresses = addresses
        self.tally = SpreadTally()
        self._marker = f"payrouter-bench-spread-end-{os.getpid()}-{id(self)}"
        self._feeds: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._readers: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for address in self.addresses:
            # Lines of scripts with long arguments are long: no 64 KiB line limit.
            reader, writer = await _open(address, limit=MONITOR_LINE_LIMIT)
            self._feeds.append((reader, writer))
            await _command(reader, writer, "MONITOR")
        for address, (reader, _) in zip(self.addresses, self._feeds, strict=True):
            self._readers.append(asyncio.create_task(self._read(address.name, reader)))

    async def _read(self, node: str, reader: asyncio.StreamReader) -> None:
        while True:
            raw = await reader.readline()
            if not raw:
                raise RuntimeError(f"MONITOR on {node} ended before the marker")
            command = parse_monitor_line(raw.decode("latin-1"))
            if command is None:
                continue
            if command.name == "echo" and command.args == (self._marker.encode(),):
                return
            self.tally.add(node, command)

    async def stop(self) -> SpreadTally:
        """Mark the end on every node, read each feed up to its mark, close everything."""
        try:
            for address in self.addresses:
                # No PING: the marker is the only command this connection adds to the feed.
                reader, writer = await _open(address, ping=False)
                try:
                    await _command(reader, writer, "ECHO", self._marker)
                finally:
                    writer.close()
            async with asyncio.timeout(MONITOR_DRAIN_S):
                await asyncio.gather(*self._readers)
        finally:
            for task in self._readers:
                task.cancel()
            for _, writer in self._feeds:
                writer.close()
        return self.tally


@dataclass(frozen=True)
class CpuReading:
    """CPU seconds of each watched party at one moment, and the whole machine's ticks."""

    seconds: dict[str, float]
    host: tuple[int, int] = (0, 0)


class CpuWatch:
    """CPU counters of named processes (`/proc/<pid>/stat`) and of this process."""

    def __init__(self, pids: Mapping[str, list[int]]) -> None:
        self.pids = {name: list(p) for name, p in pids.items()}

    def read(self) -> CpuReading:
        out = {name: sum(process_cpu_s(pid) for pid in pids) for name, pids in self.pids.items()}
        out["client"] = own_cpu_s()
        return CpuReading(out, host_jiffies(Path("/proc/stat").read_text()))

    @staticmethod
    def busy(before: CpuReading, after: CpuReading, elapsed_s: float) -> float | None:
        """Share of the machine's cores the watched processes kept busy (0..1)."""
        cores = os.cpu_count() or 1
        if elapsed_s <= 0:
            return None
        used = sum(after.seconds[n] - before.seconds.get(n, 0.0) for n in after.seconds)
        return round(used / elapsed_s / cores, 3)

    @staticmethod
    def host_busy(before: CpuReading, after: CpuReading) -> float | None:
        """Share of the machine busy with anything, measured or not (from /proc/stat)."""
        return busy_share(before.host, after.host)

    @staticmethod
    def per_item(before: CpuReading, after: CpuReading, items: int) -> dict[str, float | None]:
        """CPU milliseconds per item of each party between two readings."""
        if items <= 0:
            return {name: None for name in after.seconds}
        return {
            name: round((after.seconds[name] - before.seconds.get(name, 0.0)) * 1000 / items, 3)
            for name in after.seconds
        }
