"""Reading counters while load runs: processes' CPU, and Redis's own statistics.

Redis is asked over one raw RESP connection opened before the measurement, so the harness
adds exactly one command (`INFO`) and one socket read per snapshot, and none of a client
library's connection handshake (`HELLO`, `CLIENT SETINFO`), to what it measures.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from benchmarks.harness.procs import StartError, own_cpu_s, process_cpu_s
from benchmarks.harness.stats import RedisSnapshot, busy_share, host_jiffies, snapshot
from router.store import CONNECT_TIMEOUT_S, REPLY_TIMEOUT_S


class RedisInfo:
    """One connection that sends `INFO ...` and reads the bulk-string answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def connect(cls, url: str) -> RedisInfo:
        """Connect and authenticate; `StartError` naming the address if that cannot be done
        within `CONNECT_TIMEOUT_S` + `REPLY_TIMEOUT_S`."""
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 6379
        writer = None
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S + REPLY_TIMEOUT_S):
                reader, writer = await asyncio.open_connection(host, port)
                info = cls(reader, writer)
                if parts.password:
                    await info.command("AUTH", parts.username or "default", parts.password)
                await info.command("PING")
        except (OSError, EOFError, ValueError, RuntimeError) as exc:
            # TimeoutError is an OSError; the others: something that is not Redis answered,
            # or Redis refused AUTH.
            if writer is not None:
                writer.close()
            reason = str(exc) or type(exc).__name__
            raise StartError(f"--redis-url: cannot use Redis at {host}:{port}: {reason}") from None
        return info

    async def command(self, *args: str) -> str:
        """Send one command; return a bulk or simple string answer as text."""
        encoded = [a.encode() for a in args]
        frame = b"*%d\r\n" % len(encoded)
        for arg in encoded:
            frame += b"$%d\r\n%s\r\n" % (len(arg), arg)
        self._writer.write(frame)
        await self._writer.drain()
        head = await self._reader.readline()
        if head.startswith(b"$"):
            size = int(head[1:])
            body = await self._reader.readexactly(size + 2)
            return body[:-2].decode()
        if head.startswith(b"+"):
            return head[1:].strip().decode()
        raise RuntimeError(f"redis answered {head.strip().decode(errors='replace')}")

    async def snapshot(self) -> RedisSnapshot:
        return snapshot(await self.command("INFO", "commandstats", "stats"))

    async def version(self) -> str:
        for line in (await self.command("INFO", "server")).splitlines():
            if line.startswith("redis_version:"):
                return line.partition(":")[2].strip()
        return "unknown"

    async def close(self) -> None:
        self._writer.close()
        await self._writer.wait_closed()


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
