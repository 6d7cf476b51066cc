"""A private PostgreSQL server for tests and benchmarks: Debian's binaries, a fresh cluster
in a temporary folder, on a free loopback port.

PostgreSQL refuses to run as root, and CI runs as root: then the server runs as the
`postgres` system user (`runuser`), in a folder that user owns. Durability is switched off
(fsync, full-page writes): the cluster is thrown away at the end.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


class PostgresError(Exception):
    """The server could not be set up (not installed, failed to start)."""


def binaries() -> Path:
    """The folder of Debian's PostgreSQL server binaries (the newest version installed)."""
    root = Path("/usr/lib/postgresql")
    found = sorted(
        (p for p in root.glob("*/bin") if (p / "postgres").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not found:
        raise PostgresError("PostgreSQL is not installed (Debian's postgresql): run scripts/setup")
    return found[-1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PostgresServer:
    """A running server: `url(db)` names a database on it (user `postgres`, trust auth on
    loopback only), `create_database` / `drop_database` manage them."""

    folder: Path
    port: int
    bin: Path
    as_postgres: bool

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _as_owner(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if self.as_postgres else argv

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement with psql; its output (unaligned, tuples only)."""
        psql = shutil.which("psql") or str(self.bin / "psql")
        result = subprocess.run(  # noqa: S603 - our own server, a fixed argv
            [
                psql,
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                statement,
                self.url(database),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if result.returncode != 0:
            raise PostgresError(f"psql {statement!r}: {result.stderr.strip()}")
        return result.stdout.strip()

    def create_database(self, name: str, template: str = "template1") -> str:
        """A new database copied from `template`; its URL."""
        self.sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def start_argv(self) -> list[str]:
        """`pg_ctl start` for this server's folder and port, waiting until it answers."""
        return [
            str(self.bin / "pg_ctl"),
            "start",
            "-w",
            "-t",
            "30",
            "-D",
            str(self.folder / "data"),
            "-l",
            str(self.folder / "server.log"),
            "-o",
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c synchronous_commit=off -c max_connections=200",
        ]

    def pause(self) -> None:
        """Stop the server (fast shutdown: clients are cut off), keeping its data: an outage
        that `resume` ends."""
        self._pg_ctl(
            [str(self.bin / "pg_ctl"), "stop", "-D", str(self.folder / "data"), "-m", "fast"]
        )

    def resume(self) -> None:
        """Start the server `pause` stopped, on the same port."""
        self._pg_ctl(self.start_argv())

    def _pg_ctl(self, argv: list[str]) -> None:
        result = subprocess.run(  # noqa: S603 - our own server, a fixed argv
            self._as_owner(argv), capture_output=True, text=True, timeout=60, check=False
        )
        if result.returncode != 0:
            raise PostgresError(f"pg_ctl: {result.stdout}{result.stderr}".strip())

    def stop(self) -> None:
        subprocess.run(  # noqa: S603 - our own server, a fixed argv
            self._as_owner(
                [str(self.bin / "pg_ctl"), "stop", "-D", str(self.folder / "data"), "-m", "fast"]
            ),
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(self.folder, ignore_errors=True)


def start_postgres() -> PostgresServer:
    """initdb into a new temporary folder and start the server; raises `PostgresError`."""
    bin_dir = binaries()
    as_postgres = os.geteuid() == 0
    # Not under pytest's tmp folder: that one is private to root, and the server runs as
    # `postgres`.
    folder = Path(tempfile.mkdtemp(prefix="payrouter-pg-"))
    if as_postgres:
        shutil.chown(folder, "postgres", "postgres")
    server = PostgresServer(folder, _free_port(), bin_dir, as_postgres)
    data = folder / "data"
    steps = [
        [
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ],
        server.start_argv(),
    ]
    for argv in steps:
        result = subprocess.run(  # noqa: S603 - fixed argv, our own temporary cluster
            server._as_owner(argv), capture_output=True, text=True, timeout=60, check=False
        )
        if result.returncode != 0:
            log = (folder / "server.log").read_text() if (folder / "server.log").exists() else ""
            server.stop()
            raise PostgresError(
                f"{Path(argv[0]).name} failed: {result.stdout}{result.stderr}{log}".strip()
            )
    return server
